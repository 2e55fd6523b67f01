/* alloc: 5e6 two-field objects {value, next} kept alive for 1024 iterations in a ring
   (same algorithm as alloc.vvs). C has no collector: a dropped object is freed by hand
   once its `next` has been followed, which is when the other versions make it garbage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

struct obj {
    int64_t value;
    struct obj *next;
};

static struct obj *new_obj(int64_t value) {
    struct obj *o = malloc(sizeof *o);
    if (o == NULL) {
        fputs("alloc: out of memory\n", stderr);
        exit(1);
    }
    o->value = value;
    o->next = NULL;
    return o;
}

int main(void) {
    int64_t n = 5000000;
    enum { RING_SIZE = 1024 };
    struct obj *ring[RING_SIZE] = {NULL};
    struct obj *prev = new_obj(-1);
    int64_t checksum = 0;
    int slot = 0;
    for (int64_t i = 0; i < n; i++) {
        struct obj *obj = new_obj(i);
        prev->next = obj;
        prev = obj;
        struct obj *old = ring[slot];
        if (old != NULL) {
            checksum += old->next->value;
            free(old);
        }
        ring[slot] = obj;
        slot += 1;
        if (slot == RING_SIZE)
            slot = 0;
    }
    printf("%" PRId64 "\n", checksum);
    return 0;
}
