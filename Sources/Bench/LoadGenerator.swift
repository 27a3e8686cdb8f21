import Foundation

/// Runs the load: closed loop (`clients` threads, each sending its next request as soon as the previous
/// one ends) or open loop (requests due at Poisson arrival times at `rate`/s, sent by a pool of up to
/// `maxConnections` threads that grows on demand). Stops issuing at `duration` seconds or after
/// `requests` requests (whichever comes first) or on `stop()`; requests already sent run to their end
/// (bounded by `timeout`). Every issued request is counted once as succeeded or failed.
///
/// `@unchecked Sendable`: the mutable dispatch state (`issued`, `stopRequested`, the open-loop queue and
/// worker counts) is touched only while `lock` is held; `collector` is itself thread-safe.
public final class LoadGenerator: @unchecked Sendable {
    public let options: LoadOptions
    public let mix: ModelMix
    public let prompts: PromptSource
    public let collector: ResultCollector
    /// `MonotonicClock` value of time zero.
    public let origin: UInt64

    private let lock = NSCondition()
    private var issued = 0
    private var stopRequested = false
    // Open loop
    private var queue: [RequestPlan] = []
    private var queueHead = 0
    private var workers = 0
    private var idleWorkers = 0
    private var arrivalsDone = false
    private let group = DispatchGroup()

    public init(options: LoadOptions, mix: ModelMix, prompts: PromptSource) {
        self.options = options
        self.mix = mix
        self.prompts = prompts
        origin = MonotonicClock.now()
        collector = ResultCollector(options: options, models: mix.names, origin: origin)
    }

    /// Ends the run early: no new requests; those in flight finish.
    public func stop() {
        lock.lock()
        stopRequested = true
        lock.broadcast()
        lock.unlock()
    }

    private var endTime: UInt64? { options.duration.map { origin &+ MonotonicClock.nanoseconds($0) } }
    private var requestLimit: Int { options.requests ?? (options.duration == nil ? LoadOptions.defaultRequests : Int.max) }

    /// The plan of request `index`: model, prompt and length from the request's own random stream.
    public func plan(index: Int, scheduledAt: UInt64) -> RequestPlan {
        var random = RandomSource(seed: options.seed, stream: UInt64(index))
        let model = mix.pick(using: &random)
        let range = options.maxTokens
        let maxTokens = range.lowerBound + Int(random.next() % UInt64(range.count))
        let messages = prompts.messages(forRequest: index, random: &random)
        return RequestPlan(index: index, model: model, messages: messages, maxTokens: maxTokens, scheduledAt: scheduledAt)
    }

    /// Runs to the end; `progress` is called about once a second from another thread.
    public func run(progress: (@Sendable (ResultCollector.Snapshot) -> Void)? = nil) -> BenchResult {
        var churn: AdapterChurn?
        if options.churnRate != nil {
            churn = AdapterChurn(options: options)
            churn?.start()
        }
        let ticker = progress.map { report in
            Ticker(interval: 1) { [collector] in report(collector.snapshot()) }
        }
        if let rate = options.rate {
            runOpenLoop(rate: rate)
        } else {
            runClosedLoop(clients: options.clients ?? 1)
        }
        group.wait()

        ticker?.stop()
        let churnStats = churn?.stop()
        return collector.finish(churn: churnStats)
    }

    // MARK: - Closed loop

    private func runClosedLoop(clients: Int) {
        for c in 0..<clients {
            group.enter()
            let thread = Thread { [self] in
                let executor = RequestExecutor(options: options, origin: origin)
                while let index = claimClosedLoop() {
                    let now = MonotonicClock.now() &- origin
                    let plan = plan(index: index, scheduledAt: now)
                    collector.willSend(model: plan.model)
                    collector.record(executor.execute(plan))
                }
                executor.close()
                group.leave()
            }
            thread.name = "bench-client-\(c)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// The next request index, or nil when the run is over.
    private func claimClosedLoop() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard !stopRequested, issued < requestLimit else { return nil }
        if let endTime, MonotonicClock.now() >= endTime { return nil }
        issued += 1
        return issued - 1
    }

    // MARK: - Open loop

    private func runOpenLoop(rate: Double) {
        var arrivals = RandomSource(seed: options.seed ^ 0xA441_1B41_5EED_0001)
        var due: UInt64 = 0
        var index = 0
        while index < requestLimit {
            due &+= MonotonicClock.nanoseconds(arrivals.exponential(rate: rate))
            if let duration = options.duration, Double(due) / 1e9 >= duration { break }
            // Sleep until due, waking early on stop().
            lock.lock()
            while !stopRequested && MonotonicClock.now() &- origin < due {
                let wait = Double(due &- (MonotonicClock.now() &- origin)) / 1e9
                _ = lock.wait(until: Date(timeIntervalSinceNow: max(0, wait)))
            }
            if stopRequested {
                lock.unlock()
                break
            }
            issued += 1
            queue.append(plan(index: index, scheduledAt: due))
            if idleWorkers == 0 && workers < options.maxConnections {
                workers += 1
                spawnWorker(workers)
            }
            lock.signal()
            lock.unlock()
            index += 1
        }
        lock.lock()
        arrivalsDone = true
        lock.broadcast()
        lock.unlock()
    }

    /// Caller holds `lock`.
    private func spawnWorker(_ number: Int) {
        group.enter()
        let thread = Thread { [self] in
            let executor = RequestExecutor(options: options, origin: origin)
            while let plan = nextQueued() {
                collector.willSend(model: plan.model)
                collector.record(executor.execute(plan))
            }
            executor.close()
            group.leave()
        }
        thread.name = "bench-worker-\(number)"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// The next due request, waiting for one; nil once arrivals are over and the queue is empty.
    private func nextQueued() -> RequestPlan? {
        lock.lock()
        defer { lock.unlock() }
        while queueHead == queue.count {
            if arrivalsDone { return nil }
            idleWorkers += 1
            lock.wait()
            idleWorkers -= 1
        }
        let plan = queue[queueHead]
        queueHead += 1
        if queueHead > 1024 && queueHead * 2 > queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
        return plan
    }
}
