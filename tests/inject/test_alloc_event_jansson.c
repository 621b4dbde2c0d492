/* test_alloc_event.c with jansson's allocations failing too, through the
 * hook mcpr_process_init() installs. */
#define WITH_JANSSON 1
#include "test_alloc_event.c"
