# Store engine: block layer, B+tree, transactions, maps.
cow_test(unit_store SOURCES unit/test_store.c LABELS unit TIMEOUT 120)
cow_test(model_store SOURCES model/test_model_store.c LABELS model TIMEOUT 600
	ARGS 100000)
cow_test(model_store_long SOURCES model/test_model_store.c LABELS model long TIMEOUT 3600
	ARGS 3000000)
