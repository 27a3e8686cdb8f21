import Foundation

/// What the churn thread did.
public struct ChurnStats: Sendable {
    public var addsSucceeded = 0
    public var addsFailed = 0
    public var removesSucceeded = 0
    public var removesFailed = 0
    public var addLatency = LatencyHistogram()
    public var removeLatency = LatencyHistogram()
    /// A few failure texts.
    public var errorSamples: [String] = []
}

/// Adds and removes adapters through the admin API while load runs: every 1/rate seconds on average
/// (Poisson) it registers `path` under a fresh name (`prefix` + counter) and, once more than `keep` of
/// its adapters are live, removes the oldest. On `stop()` it removes those it still has.
///
/// `@unchecked Sendable`: `stats`, `live` and `stopping` are touched only under `lock`; the thread is
/// the only user of `client`.
public final class AdapterChurn: @unchecked Sendable {
    public let options: LoadOptions
    private let client: AdminClient
    private let lock = NSCondition()
    private var stopping = false
    private var finished = false
    private var stats = ChurnStats()
    private var live: [String] = []

    public init(options: LoadOptions) {
        self.options = options
        client = AdminClient(url: options.url, adminKey: options.adminKey ?? options.apiKey, timeout: options.timeout)
    }

    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "adapter-churn"
        thread.start()
    }

    /// Stops adding, removes the remaining churn adapters, and returns what happened.
    public func stop() -> ChurnStats {
        lock.lock()
        stopping = true
        lock.broadcast()
        while !finished { lock.wait() }
        let result = stats
        lock.unlock()
        return result
    }

    private func run() {
        guard let rate = options.churnRate, let path = options.churnPath else {
            finish()
            return
        }
        var random = RandomSource(seed: options.seed ^ 0xC4A5_3F00_D00D_F00D)
        var next = MonotonicClock.now()
        var counter = 0
        while true {
            next &+= MonotonicClock.nanoseconds(random.exponential(rate: rate))
            lock.lock()
            while !stopping && MonotonicClock.now() < next {
                let wait = Double(next &- MonotonicClock.now()) / 1e9
                _ = lock.wait(until: Date(timeIntervalSinceNow: max(0, wait)))
            }
            let stop = stopping
            lock.unlock()
            if stop { break }
            let name = "\(options.churnPrefix)\(counter)"
            counter += 1
            if add(name: name, path: path) {
                lock.lock()
                live.append(name)
                let surplus = live.count > options.churnKeep ? live.removeFirst() : nil
                lock.unlock()
                if let surplus { remove(name: surplus) }
            }
        }
        lock.lock()
        let remaining = live
        live.removeAll()
        lock.unlock()
        for name in remaining { remove(name: name) }
        client.close()
        finish()
    }

    private func finish() {
        lock.lock()
        finished = true
        lock.broadcast()
        lock.unlock()
    }

    @discardableResult
    private func add(name: String, path: String) -> Bool {
        let t0 = MonotonicClock.now()
        let outcome: Result<AdminClient.Response, HTTPClientError>
        do { outcome = .success(try client.add(name: name, path: path, merged: options.churnMerged)) }
        catch { outcome = .failure(error) }
        let elapsed = MonotonicClock.now() &- t0
        lock.lock()
        defer { lock.unlock() }
        switch outcome {
        case .success(let response) where response.isSuccess:
            stats.addsSucceeded += 1
            stats.addLatency.record(nanoseconds: elapsed)
            return true
        case .success(let response):
            stats.addsFailed += 1
            note("add \(name): HTTP \(response.status): \(response.message)")
        case .failure(let error):
            stats.addsFailed += 1
            note("add \(name): \(error)")
        }
        return false
    }

    private func remove(name: String) {
        let t0 = MonotonicClock.now()
        let outcome: Result<AdminClient.Response, HTTPClientError>
        do { outcome = .success(try client.remove(name: name)) }
        catch { outcome = .failure(error) }
        let elapsed = MonotonicClock.now() &- t0
        lock.lock()
        defer { lock.unlock() }
        switch outcome {
        case .success(let response) where response.isSuccess:
            stats.removesSucceeded += 1
            stats.removeLatency.record(nanoseconds: elapsed)
        case .success(let response):
            stats.removesFailed += 1
            note("remove \(name): HTTP \(response.status): \(response.message)")
        case .failure(let error):
            stats.removesFailed += 1
            note("remove \(name): \(error)")
        }
    }

    /// Caller holds the lock.
    private func note(_ text: String) {
        if stats.errorSamples.count < 5 { stats.errorSamples.append(String(text.prefix(300))) }
    }
}
