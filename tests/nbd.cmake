# Volumes as disks: the block map the NBD plugin reports, then the plugin
# driven by real clients (nbdkit, libnbd-bin, qemu-utils). Scripts skip with
# exit 77 and say why when a client or the plugin is missing.
cow_test(unit_vol_extents SOURCES unit/test_vol_extents.c LABELS unit TIMEOUT 30)
