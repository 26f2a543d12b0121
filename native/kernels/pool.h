// A persistent worker pool that hands out chunks of one job through an atomic counter.
//
// Why not a thread per call: the trainer makes thousands of sub-millisecond products per step, and
// on a shared or busy machine a freshly started (or sleeping) thread may wait milliseconds for a
// core. Here the calling thread works through the chunks itself from the start; a worker joins
// in as soon as it wakes, and one that never got a core before the job ran out of chunks is not
// waited for at all (it finds the job already retired). So threads can only help, never stall
// a product behind a descheduled straggler.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

class ChunkPool {
 public:
  // Runs fn(0..chunks-1) on the caller plus up to helpers more threads; returns when all are done.
  void run(int chunks, int helpers, const std::function<void(int)>& fn) {
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (!busy.owns_lock() || helpers <= 0 || chunks <= 1) {  // nested or concurrent use: just run here
      for (int i = 0; i < chunks; i++) fn(i);
      return;
    }
    grow(helpers);
    {
      std::lock_guard<std::mutex> g(mu_);
      fn_ = &fn;
      total_ = chunks;
      next_.store(0);
      done_.store(0);
      wanted_ = helpers;
      gen_++;
    }
    cv_.notify_all();
    work();
    std::unique_lock<std::mutex> g(mu_);
    // Wait only for workers that joined this job (they hold chunks or are about to find none).
    idle_cv_.wait(g, [&] { return joined_ == 0 && done_.load() == total_; });
    fn_ = nullptr;
  }

 private:
  void work() {
    for (;;) {
      const int i = next_.fetch_add(1);
      if (i >= total_) return;
      (*fn_)(i);
      done_.fetch_add(1);
    }
  }

  void grow(int n) {
    while ((int)workers_ < n) {
      try {
        std::thread(&ChunkPool::loop, this).detach();  // lives for the process, like the addon
        workers_++;
      } catch (...) {
        return;  // thread limit: run with what we have
      }
    }
  }

  void loop() {
    unsigned long seen = 0;
    std::unique_lock<std::mutex> g(mu_);
    for (;;) {
      cv_.wait(g, [&] { return gen_ != seen; });
      seen = gen_;
      if (fn_ == nullptr || wanted_ <= 0) continue;  // job already retired, or enough helpers
      wanted_--;
      joined_++;
      g.unlock();
      work();
      g.lock();
      joined_--;
      if (joined_ == 0) idle_cv_.notify_all();
    }
  }

  std::mutex run_mu_;  // one job at a time (a second JS thread calling in runs serially instead)
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  const std::function<void(int)>* fn_ = nullptr;
  int total_ = 0, wanted_ = 0, joined_ = 0;
  unsigned long gen_ = 0;
  unsigned workers_ = 0;
  std::atomic<int> next_{0}, done_{0};
};
