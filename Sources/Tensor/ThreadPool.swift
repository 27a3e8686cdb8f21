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
/// Workers hold the pool's `Shared` state, never the pool itself, so dropping the last
/// reference to the pool runs `deinit`, which stops and joins the workers.
///
/// `@unchecked Sendable`: `workers` is written only in `init` and read only in `deinit`;
/// everything the threads share lives in `Shared` (see there).
public final class ThreadPool: @unchecked Sendable {
    public let threadCount: Int
    private let shared = Shared()
    private var workers: [pthread_t] = []

    /// A pool whose `parallelFor` uses `threads` threads in all (the caller plus `threads - 1` workers).
    /// If the system refuses to start a thread, the pool runs with the threads it got.
    public init(threads: Int) {
        for index in 1..<max(1, threads) {
            var t = pthread_t()
            let box = Unmanaged.passRetained(WorkerBox(shared: shared, index: index))
            let rc = pthread_create(&t, nil, { raw in
                let box = Unmanaged<WorkerBox>.fromOpaque(raw!).takeRetainedValue()
                box.shared.workerLoop(index: box.index)
                return nil
            }, box.toOpaque())
            guard rc == 0 else { box.release(); break }
            workers.append(t)
        }
        threadCount = 1 + workers.count
    }

    deinit {
        shared.shutDown()
        for t in workers { pthread_join(t, nil) }
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
        shared.run(count, workers: threadCount - 1, body)
    }
}

/// The state the caller and the workers share.
///
/// `@unchecked Sendable`: `job`, `chunkCount` and `shuttingDown` are written only under
/// `mutex`; workers read the job under `mutex` after observing a new generation number.
/// Every other shared field is an `Atomic`.
private final class Shared: @unchecked Sendable {
    let generation = Atomic<Int>(0)
    let nextChunk = Atomic<Int>(0)
    let pending = Atomic<Int>(0)
    var job: ((Int, Int) -> Void)?
    var chunkCount = 0
    var shuttingDown = false
    // Heap-allocated so their addresses never move (pthread objects must not be copied).
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(cond)
        mutex.deallocate()
        cond.deallocate()
    }

    func shutDown() {
        pthread_mutex_lock(mutex)
        shuttingDown = true
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    /// Publishes `body` to `workers` workers, works on it too, and waits for all of them.
    func run(_ count: Int, workers: Int, _ body: (Int, Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            pthread_mutex_lock(mutex)
            job = body
            chunkCount = count
            nextChunk.store(0, ordering: .relaxed)
            pending.store(workers, ordering: .relaxed)
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

    func workerLoop(index: Int) {
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

/// Carries a worker's start arguments through `pthread_create`'s opaque pointer.
private final class WorkerBox {
    let shared: Shared
    let index: Int
    init(shared: Shared, index: Int) { self.shared = shared; self.index = index }
}
