# Process kills: a writer killed with SIGKILL at random moments while readers read.
cow_test(crash_kill SOURCES crash/test_kill.c LABELS crash TIMEOUT 600 ARGS 200)
cow_test(crash_kill_long SOURCES crash/test_kill.c LABELS crash long TIMEOUT 3600 ARGS 5000)
