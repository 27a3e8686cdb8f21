import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A fixed set of worker threads for fork-join loops in the forward pass.
///
/// `parallelFor` hands out chunks from an atomic counter; the caller works too and spins
/// until every worker is done. Workers spin briefly between jobs, then sleep on a
/// condition variable, so an idle server costs nothing while back-to-back kernels
/// (hundreds per token) pay no wake-up latency.
///
/// `@unchecked Sendable`: the job closure and its bounds are published under `mutex`
/// and read by workers only after they observe the new generation number; every other
/// shared field is an `Atomic`.
public final class ThreadPool: @unchecked Sendable {
    public let threadCount: Int
    private let generation = Atomic<Int>(0)
    private let nextChunk = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private var job: ((Int, Int) -> Void)?
    private var chunkCount = 0
    // Heap-allocated so their addresses never move (pthread objects must not be copied).
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var shuttingDown = false
    private var workers: [pthread_t] = []

    /// A pool whose `parallelFor` uses `threads` threads in all (the caller plus `threads - 1` workers).
    public init(threads: Int) {
        threadCount = max(1, threads)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        for index in 1..<threadCount {
            var t = pthread_t()
            let box = Unmanaged.passRetained(WorkerBox(pool: self, index: index))
            pthread_create(&t, nil, { raw in
                let box = Unmanaged<WorkerBox>.fromOpaque(raw!).takeRetainedValue()
                box.pool.workerLoop(index: box.index)
                return nil
            }, box.toOpaque())
            workers.append(t)
        }
    }

    deinit {
        pthread_mutex_lock(mutex)
        shuttingDown = true
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
        for t in workers { pthread_join(t, nil) }
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(cond)
        mutex.deallocate()
        cond.deallocate()
    }

    /// Runs `body(i)` for every i in 0..<count, spread over the pool. Returns when all are done.
    /// Not reentrant: call it from one thread at a time (the engine thread).
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        parallelFor(count) { i, _ in body(i) }
    }

    /// Runs `body(i, thread)` for every i in 0..<count; `thread` in 0..<threadCount names the
    /// thread running it (for per-thread scratch memory).
    public func parallelFor(_ count: Int, _ body: (Int, Int) -> Void) {
        if count <= 0 { return }
        if threadCount == 1 || count == 1 {
            for i in 0..<count { body(i, 0) }
            return
        }
        withoutActuallyEscaping(body) { body in
            pthread_mutex_lock(mutex)
            job = body
            chunkCount = count
            nextChunk.store(0, ordering: .relaxed)
            pending.store(threadCount - 1, ordering: .relaxed)
            generation.add(1, ordering: .releasing)
            pthread_cond_broadcast(cond)
            pthread_mutex_unlock(mutex)
            runChunks(body, count, thread: 0)
            while pending.load(ordering: .acquiring) > 0 { spinPause() }
            pthread_mutex_lock(mutex)
            job = nil
            pthread_mutex_unlock(mutex)
        }
    }

    private func runChunks(_ body: (Int, Int) -> Void, _ count: Int, thread: Int) {
        while true {
            let i = nextChunk.add(1, ordering: .relaxed).oldValue
            if i >= count { return }
            body(i, thread)
        }
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            // Spin a while for the next job, then sleep.
            var spins = 0
            while generation.load(ordering: .acquiring) == seen && spins < 20_000 { spinPause(); spins += 1 }
            pthread_mutex_lock(mutex)
            while generation.load(ordering: .acquiring) == seen && !shuttingDown {
                pthread_cond_wait(cond, mutex)
            }
            if shuttingDown { pthread_mutex_unlock(mutex); return }
            seen = generation.load(ordering: .acquiring)
            runPublishedJob(thread: index)
            // The job's closure is released by now: parallelFor may return once pending is 0.
            pending.subtract(1, ordering: .releasing)
        }
    }

    /// Takes the job published under the (locked) mutex, unlocks, runs it, and drops the
    /// reference to its closure on return.
    @inline(never) private func runPublishedJob(thread: Int) {
        let body = job
        let count = chunkCount
        pthread_mutex_unlock(mutex)
        if let body { runChunks(body, count, thread: thread) }
    }

    @inline(__always) private func spinPause() {
        #if arch(x86_64)
        // No portable pause intrinsic in Swift; a tiny yield-free delay.
        _ = nextChunk.load(ordering: .relaxed)
        #endif
    }
}

private final class WorkerBox {
    unowned let pool: ThreadPool
    let index: Int
    init(pool: ThreadPool, index: Int) { self.pool = pool; self.index = index }
}
