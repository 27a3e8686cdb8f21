import Foundation

/// Calls `action` every `interval` seconds on its own thread until `stop()`, which waits for the thread.
///
/// `@unchecked Sendable`: `stopped` and `finished` are touched only under `condition`.
final class Ticker: @unchecked Sendable {
    private let condition = NSCondition()
    private var stopped = false
    private var finished = false

    init(interval: Double, action: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            condition.lock()
            while !stopped {
                let deadline = Date(timeIntervalSinceNow: interval)
                while !stopped && Date() < deadline { _ = condition.wait(until: deadline) }
                if stopped { break }
                condition.unlock()
                action()
                condition.lock()
            }
            finished = true
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "bench-ticker"
        thread.start()
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }
}
