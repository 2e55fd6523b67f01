/* vv_crash.h - one line on stderr before a fatal signal ends the process.
 *
 * Owns the fatal-signal handler that Core.install_ffi installs the first time
 * a foreign function is mapped (docs/ffi.md "A crash inside a foreign
 * function"), and the table of live machines it reads. A foreign function
 * runs as native code inside the process: a bad pointer, a signature that
 * does not match the C function, or a library's abort() ends the process, and
 * nothing can be recovered. Before this handler, the user saw only the shell's
 * "Segmentation fault" (status 139) and had to guess which ncall did it. Now
 * the process still ends by the same signal (so the status, 128 + signal, and
 * any core dump are what they were), after one line such as
 *
 *     voxvm: fatal: SIGSEGV in foreign function strlen (ncall 0x40, libc.so.6); the process ends
 *
 * Which function: vv_native_ffi (vv_ffi.h) stores the running entry's text in
 * its machine (`ffi_running`) before the call and clears it after, two plain
 * stores. The handler finds the machines through `vv_crash_vms`, a fixed table
 * that Core registers into when created and leaves when freed (both with the
 * GIL held), and names the one machine inside a foreign call (or the first two,
 * when threads are inside several). It reads no thread-local storage (the
 * first access from a thread may allocate) and calls only write(2),
 * sigaction(2) and raise(3), which are async-signal-safe.
 *
 * The handler is chained: it restores the disposition it replaced (the
 * default, or Python's faulthandler when enabled) and raises the signal again.
 * It runs on an alternate stack for the thread that installed it, so that a
 * foreign function that overflows that thread's stack still gets its line.
 */
#ifndef VV_CRASH_H
#define VV_CRASH_H

#include "vv_core.h"

#if defined(__unix__) || defined(__APPLE__)
#define VV_CRASH_REPORTS 1
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#else
#define VV_CRASH_REPORTS 0
#endif

/* Machines the handler can look at: past this many live Cores, a new one is
 * not registered and a crash in its foreign call is reported without a name. */
#define VV_CRASH_SLOTS 1024

static vv_vm *volatile vv_crash_vms[VV_CRASH_SLOTS];

/* Register vm (GIL held); its slot in vm->crash_slot, -1 if the table is full. */
static void vv_crash_register(vv_vm *vm) {
    vm->crash_slot = -1;
    for (int i = 0; i < VV_CRASH_SLOTS; i++) {
        if (vv_crash_vms[i] == NULL) {
            vv_crash_vms[i] = vm;
            vm->crash_slot = i;
            return;
        }
    }
}

static void vv_crash_unregister(vv_vm *vm) {
    if (vm->crash_slot >= 0 && vm->crash_slot < VV_CRASH_SLOTS && vv_crash_vms[vm->crash_slot] == vm)
        vv_crash_vms[vm->crash_slot] = NULL;
    vm->crash_slot = -1;
}

#if VV_CRASH_REPORTS

static const int vv_crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
#define VV_CRASH_NSIGNALS ((int)(sizeof vv_crash_signals / sizeof vv_crash_signals[0]))
static struct sigaction vv_crash_previous[VV_CRASH_NSIGNALS];
static int vv_crash_installed;

static const char *vv_crash_signal_name(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    default: return "a fatal signal";
    }
}

static void vv_crash_write(const char *text) {
    size_t left = strlen(text);
    while (left > 0) {
        ssize_t n = write(2, text, left);
        if (n <= 0) return;                     /* stderr is gone: nothing else to try */
        text += n;
        left -= (size_t)n;
    }
}

static void vv_crash_handler(int sig) {
    const char *running[2] = {NULL, NULL};
    int inside = 0;
    for (int i = 0; i < VV_CRASH_SLOTS; i++) {
        vv_vm *vm = vv_crash_vms[i];
        const char *what = vm != NULL ? vm->ffi_running : NULL;
        if (what != NULL) {
            if (inside < 2) running[inside] = what;
            inside++;
        }
    }
    vv_crash_write("voxvm: fatal: ");
    vv_crash_write(vv_crash_signal_name(sig));
    if (inside == 1) {
        vv_crash_write(" in foreign function ");
        vv_crash_write(running[0]);
    } else if (inside > 1) {
        vv_crash_write(" while threads were inside several foreign functions (");
        vv_crash_write(running[0]);
        vv_crash_write(inside > 2 ? ", " : " and ");
        vv_crash_write(running[1]);
        vv_crash_write(inside > 2 ? ", ...)" : ")");
    } else {
        vv_crash_write(" outside any foreign function (a bug in voxvm or in a library loaded into"
                       " the process; please report it)");
    }
    vv_crash_write("; the process ends\n");
    for (int i = 0; i < VV_CRASH_NSIGNALS; i++) {
        if (vv_crash_signals[i] == sig) sigaction(sig, &vv_crash_previous[i], NULL);
    }
    /* Pending until the handler returns, then delivered to the restored
     * disposition; a fault re-executes its instruction and faults again. */
    raise(sig);
}

/* Install the handler once per process (GIL held); 0, or -1 if sigaction failed
 * (the calls then run unguarded, as before). */
static int vv_crash_install(void) {
    if (vv_crash_installed) return 0;
    stack_t current;
    if (sigaltstack(NULL, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
        /* 64 KiB: more than the handler needs, whatever MINSIGSTKSZ is. Kept
         * for the life of the process, like the handler. */
        stack_t alt;
        alt.ss_size = 64 * 1024;
        alt.ss_sp = malloc(alt.ss_size);
        alt.ss_flags = 0;
        if (alt.ss_sp != NULL && sigaltstack(&alt, NULL) != 0) free(alt.ss_sp);
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = vv_crash_handler;
    action.sa_flags = SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    for (int i = 0; i < VV_CRASH_NSIGNALS; i++) {
        if (sigaction(vv_crash_signals[i], &action, &vv_crash_previous[i]) != 0) {
            while (i-- > 0) sigaction(vv_crash_signals[i], &vv_crash_previous[i], NULL);
            return -1;
        }
    }
    vv_crash_installed = 1;
    return 0;
}

#else

static int vv_crash_install(void) { return 0; }

#endif /* VV_CRASH_REPORTS */

#endif /* VV_CRASH_H */
