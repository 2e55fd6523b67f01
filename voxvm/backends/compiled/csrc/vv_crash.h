/* vv_crash.h - one line on stderr when a foreign function kills the process.
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
 * stores; Core.run records the thread that runs the machine (`run_thread`).
 * The handler looks for the machine whose foreign call is running on the
 * thread that received the signal, through `vv_crash_vms`, a fixed table that
 * Core registers into when created and leaves when freed (both with the GIL
 * held). When there is none (a crash in Python, in voxvm, in a library's own
 * thread), or when another process sent the signal, it prints nothing: the
 * line only ever names a function that was running where the fault struck. It
 * reads no thread-local storage (the first access from a thread may allocate)
 * and calls only pthread_self, getpid, write, sigaction, raise and pause.
 *
 * Before the line, the handler writes to stdout what the machine's C print
 * still holds (vv_natives.h `out`): with foreign functions the host writes its
 * own output through (HostIO.write_through), so the program's output up to the
 * crash is complete and comes before the line.
 *
 * Only a signal whose disposition is still the default gets the handler: a
 * library that handles SIGSEGV itself (a collector's write barrier, a
 * language runtime), or Python's faulthandler, keeps its handler. After the
 * line the handler restores the default and raises the signal again. It runs
 * on an alternate stack (vv_crash_prepare_thread, for each thread that runs a
 * machine once the handler is installed), so that a foreign function that
 * overflows its thread's stack still gets its line.
 */
#ifndef VV_CRASH_H
#define VV_CRASH_H

#include "vv_core.h"

#if defined(__unix__) || defined(__APPLE__)
#define VV_CRASH_REPORTS 1
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#else
#define VV_CRASH_REPORTS 0
#endif

/* Machines the handler can look at: past this many live Cores, a new one is
 * not registered and a crash in its foreign call is reported without a line. */
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
#define VV_CRASH_ALT_STACK (64 * 1024)   /* more than the handler needs, whatever MINSIGSTKSZ is */
static int vv_crash_installed;
static int vv_crash_entered;             /* the first thread in prints; any other waits for the end */
static pthread_key_t vv_crash_stack_key; /* each prepared thread's alternate stack, freed at its exit */

/* Record the thread that runs vm (Core.run, before the loop). */
static void vv_crash_set_thread(vv_vm *vm) { vm->run_thread = (uintptr_t)pthread_self(); }

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

/* Append text to the line at *at (an async-signal-safe strcat with a bound). */
static void vv_crash_append(char *line, size_t room, size_t *at, const char *text) {
    while (*text && *at + 1 < room) line[(*at)++] = *text++;
    line[*at] = 0;
}

static void vv_crash_write_all(int fd, const char *data, size_t len) {
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, data + done, len - done);
        if (n <= 0) return;                     /* the stream is gone: nothing else to try */
        done += (size_t)n;
    }
}

static void vv_crash_handler(int sig, siginfo_t *info, void *context) {
    (void)context;
    const uintptr_t self = (uintptr_t)pthread_self();
    const char *what = NULL;
    const vv_vm *crashed = NULL;
    /* A signal another process sent (kill, timeout -s, a watchdog) is delivered
     * to whichever thread: it says nothing about the call running there. Its
     * si_code is SI_USER or SI_QUEUE (<= 0) with the sender's pid; a fault has
     * a positive si_code, and abort() or raise() inside the process its own pid. */
    const int sent_from_outside = info != NULL && info->si_code <= 0 && info->si_pid != getpid();
    for (int i = 0; i < VV_CRASH_SLOTS && what == NULL && !sent_from_outside; i++) {
        vv_vm *vm = vv_crash_vms[i];
        if (vm != NULL && vm->ffi_running != NULL && vm->run_thread == self) {
            what = vm->ffi_running;
            crashed = vm;
        }
    }
    if (what != NULL) {
        if (__atomic_exchange_n(&vv_crash_entered, 1, __ATOMIC_SEQ_CST)) {
            for (;;) pause();                   /* another thread is printing and ending the process */
        }
        /* First what the program printed in C and the host has not been given yet:
         * with foreign functions the host writes its output through (HostIO
         * write_through), so this is all the output still in the process. */
        const vv_natives *natives = crashed->natives;
        if (natives != NULL && natives->out.data != NULL)
            vv_crash_write_all(1, (const char *)natives->out.data, natives->out.len);
        char line[VV_FFI_WHAT + 96];
        size_t at = 0;
        vv_crash_append(line, sizeof line, &at, "voxvm: fatal: ");
        vv_crash_append(line, sizeof line, &at, vv_crash_signal_name(sig));
        vv_crash_append(line, sizeof line, &at, " in foreign function ");
        vv_crash_append(line, sizeof line, &at, what);
        vv_crash_append(line, sizeof line, &at, "; the process ends\n");
        vv_crash_write_all(2, line, at);        /* one write, unless stderr takes less */
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, NULL);
    /* Pending until the handler returns, then the default action ends the
     * process (a fault would also simply happen again). */
    raise(sig);
}

static void vv_crash_free_stack(void *stack) {
    stack_t off;
    memset(&off, 0, sizeof off);
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, NULL);
    free(stack);
}

/* Give the calling thread an alternate signal stack, once (Core.run, when the
 * handler is installed; GIL held). A thread that already has one keeps it. */
static void vv_crash_prepare_thread(void) {
    if (!vv_crash_installed || pthread_getspecific(vv_crash_stack_key) != NULL) return;
    stack_t current;
    if (sigaltstack(NULL, &current) != 0 || !(current.ss_flags & SS_DISABLE)) {
        pthread_setspecific(vv_crash_stack_key, (void *)1);   /* (a stack of its own: leave it) */
        return;
    }
    stack_t alt;
    memset(&alt, 0, sizeof alt);
    alt.ss_size = VV_CRASH_ALT_STACK;
    alt.ss_sp = malloc(alt.ss_size);
    if (alt.ss_sp == NULL) return;
    if (sigaltstack(&alt, NULL) != 0 || pthread_setspecific(vv_crash_stack_key, alt.ss_sp) != 0) {
        vv_crash_free_stack(alt.ss_sp);
        return;
    }
}

/* The key's destructor: the thread is ending. (void *)1 marks a thread whose
 * alternate stack was not ours. */
static void vv_crash_thread_ends(void *stack) {
    if (stack != (void *)1) vv_crash_free_stack(stack);
}

/* Install the handler once per process (GIL held), for each fatal signal whose
 * disposition is the default; 0, or -1 if that failed (the calls then run
 * unguarded, as before). */
static int vv_crash_install(void) {
    if (vv_crash_installed) return 0;
    if (pthread_key_create(&vv_crash_stack_key, vv_crash_thread_ends) != 0) return -1;
    struct sigaction action, previous;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = vv_crash_handler;
    action.sa_flags = SA_ONSTACK | SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    for (int i = 0; i < VV_CRASH_NSIGNALS; i++) {
        if (sigaction(vv_crash_signals[i], NULL, &previous) != 0) continue;
        if (previous.sa_handler != SIG_DFL || (previous.sa_flags & SA_SIGINFO)) continue;   /* someone's own */
        sigaction(vv_crash_signals[i], &action, NULL);
    }
    vv_crash_installed = 1;
    vv_crash_prepare_thread();
    return 0;
}

#else

static void vv_crash_set_thread(vv_vm *vm) { (void)vm; }
static void vv_crash_prepare_thread(void) {}
static int vv_crash_install(void) { return 0; }

#endif /* VV_CRASH_REPORTS */

#endif /* VV_CRASH_H */
