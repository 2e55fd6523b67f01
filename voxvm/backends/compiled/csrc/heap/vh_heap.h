/* vh_heap.h - the whole heap, for whoever uses it: the VM core (vv_core.h)
 * and the test extension (_heaptest.pyx).
 *
 * Owns nothing but the include order; each header owns one concern:
 *   vh_types.h   Heap, HeapStats, HeapRootSpan, conventions, granule arithmetic
 *   vh_bitset.h  flat and hierarchical bitmaps (region starts, pointer map, block starts)
 *   vh_access.h  block lookup cache, heap_find, queries, store/load/read/write/copy, pointer tracking
 *   vh_alloc.h   free-space max tree, first fit, split/merge, growth, free
 *   vh_gc.h      roots, mark, sweep (heap_collect)
 *   vh_policy.h  when to collect or grow (heap_alloc_auto, heap_alloc_quick)
 * vh_check.h (the invariant checker) is not included: only the test
 * extension uses it, and it includes it itself. The VM side of the heap family (block cache fast paths, GC log events) is
 * vh_vmops.h, included by vv_core.h after the vv_vm struct. docs/heap.md
 * explains the design.
 */
#ifndef VH_HEAP_H
#define VH_HEAP_H

#include "vh_types.h"
#include "vh_bitset.h"
#include "vh_access.h"
#include "vh_alloc.h"
#include "vh_gc.h"
#include "vh_policy.h"

#endif /* VH_HEAP_H */
