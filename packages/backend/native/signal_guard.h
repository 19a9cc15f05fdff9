// Blocks the asynchronous signals on the calling thread while oneDNN runs.
//
// oneDNN 2.x's generated f32 GEMM kernels (jit_avx2/avx512 gemm_f32, used by dnnl_sgemm and by gemm-based
// primitives) point rsp at a heap workspace while they run (oneDNN issue #4845, fixed upstream by PR
// #4855 in 2026, after the 2.6.3 Debian ships). A signal delivered to a thread inside one of them gets its
// frame written below that rsp, into the heap: glibc then aborts ("corrupted size vs. prev_size"), or
// worse, nothing notices. `node --cpu-prof` (SIGPROF every millisecond) hit it within seconds.
//
// While a guard lives its thread blocks every signal except the synchronous faults; what arrives meanwhile
// is delivered when the guard ends (a process-directed signal goes to another thread at once: Node's
// signal handling runs on any thread). OpenMP threads created inside a guard inherit the blocked mask and
// keep it for good: they only ever run kernels.
#pragma once

#include <pthread.h>

#include <csignal>

class SignalGuard {
 public:
  SignalGuard() {
    sigset_t block;
    sigfillset(&block);
    for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT}) sigdelset(&block, s);
    pthread_sigmask(SIG_BLOCK, &block, &saved_);
  }
  ~SignalGuard() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

 private:
  sigset_t saved_;
};
