// The loop's mailbox: how other threads reach the event-loop thread.
import CLibUV
import Foundation

/// Work posted to the loop thread from any thread.
enum LoopMessage: Sendable {
    case respond(connection: UInt64, request: UInt64, status: Int, headers: [(String, String)], body: [UInt8])
    case startStream(connection: UInt64, request: UInt64, status: Int, headers: [(String, String)])
    case send(connection: UInt64, request: UInt64, bytes: [UInt8])
    case finish(connection: UInt64, request: UInt64)
    case abandon(connection: UInt64, request: UInt64)
    case shutdown(deadline: Duration)
    case installSignals
}

/// A locked FIFO plus `uv_async_send` to wake the loop. Wake-ups coalesce, so the loop drains the whole
/// queue on each wake (libuv's docs/code/progress/main.c pattern).
///
/// `@unchecked Sendable`: `messages` and `async` are only touched under `lock`. `uv_async_send` is the one
/// libuv call documented as thread-safe; `async` is set to nil (under the lock) before the loop closes the
/// handle, so no thread can call it on a closed or freed handle.
final class LoopInbox: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [LoopMessage] = []
    private var async: UnsafeMutablePointer<uv_async_t>?

    /// Called once the async handle is initialized; from then on posts wake the loop.
    func open(_ handle: UnsafeMutablePointer<uv_async_t>) {
        lock.lock()
        async = handle
        lock.unlock()
    }

    /// Queues a message and wakes the loop; silently dropped when the loop is not running.
    func post(_ message: LoopMessage) {
        lock.lock()
        defer { lock.unlock() }
        guard let async else { return }
        messages.append(message)
        uv_async_send(async)
    }

    /// Takes everything queued so far (loop thread).
    func drain() -> [LoopMessage] {
        lock.lock()
        defer { lock.unlock() }
        let taken = messages
        messages = []
        return taken
    }

    /// Stops accepting messages; call on the loop thread before closing the async handle.
    func close() {
        lock.lock()
        async = nil
        messages = []
        lock.unlock()
    }
}
