/* process.h — internal: what mcpr_process_init() sets up. */
#ifndef MCPR__CORE_PROCESS_H
#define MCPR__CORE_PROCESS_H

/* jansson allocations that failed on this thread since it started; only
 * counted once mcpr_process_init() has run. */
unsigned long mcpr__json_alloc_failures(void);

#endif
