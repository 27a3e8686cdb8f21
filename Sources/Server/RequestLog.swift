import Foundation
import JSON

/// Structured logs: one JSON object per line on stderr. Request bodies are never logged.
public final class Logger: Sendable {
    public enum Level: Int, Sendable, Comparable {
        case debug, info, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        init?(name: String) {
            switch name { case "debug": self = .debug; case "info": self = .info
            case "warning": self = .warning; case "error": self = .error; default: return nil }
        }
        var name: String { ["debug", "info", "warning", "error"][rawValue] }
    }

    public let level: Level
    private let lock = NSLock()

    public init(level: String) { self.level = Level(name: level) ?? .info }

    public func log(_ level: Level, _ message: String, _ fields: [(String, JSONValue)] = []) {
        guard level >= self.level else { return }
        var object = JSONObject([("ts", .string(Self.timestamp())), ("level", .string(level.name)), ("msg", .string(message))])
        for (k, v) in fields { object[k] = v }
        var line = JSONValue.object(object).serialized()
        line.append(0x0A)
        lock.lock()
        // One write(2) per line, so lines from several threads never interleave.
        line.withUnsafeBufferPointer { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
        lock.unlock()
    }

    public func info(_ message: String, _ fields: [(String, JSONValue)] = []) { log(.info, message, fields) }
    public func warning(_ message: String, _ fields: [(String, JSONValue)] = []) { log(.warning, message, fields) }
    public func error(_ message: String, _ fields: [(String, JSONValue)] = []) { log(.error, message, fields) }

    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var tmv = tm()
        var t = tv.tv_sec
        gmtime_r(&t, &tmv)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday,
                      tmv.tm_hour, tmv.tm_min, tmv.tm_sec, Int(tv.tv_usec / 1000))
    }
}
