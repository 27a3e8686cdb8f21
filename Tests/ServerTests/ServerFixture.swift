import Foundation
import HTTP
import JSON
import Server
import TestSupport

/// One in-process server on a free port for all tests of this target (loading the model once).
enum ServerFixture {
    nonisolated(unsafe) static var shared: APIServer?
    nonisolated(unsafe) static var port = 0
    static let lock = NSLock()
    /// The reference adapters, copied into a temporary adapters folder (the server's root).
    static let adaptersRoot: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loraserve-tests-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    static func server() throws -> (APIServer, Int) {
        lock.lock(); defer { lock.unlock() }
        if let shared { return (shared, port) }
        var c = ServerConfiguration()
        c.port = 0
        c.adaptersDirectory = adaptersRoot
        c.adapterRoots = [TestPaths.reference.appendingPathComponent("adapters").path,
                          TestPaths.reference.appendingPathComponent("adapters-gguf").path]
        c.maxRunningSequences = 32
        c.maxBodyBytes = 1 << 20
        c.logLevel = "warning"
        let s = try APIServer(configuration: c, modelPath: TestPaths.defaultModel.path, logger: Logger(level: "warning"))
        port = try s.start()
        shared = s
        return (s, port)
    }
}

/// A JSON request over a fresh connection; returns status and parsed body.
func post(_ path: String, _ body: String, port: Int, headers: [(String, String)] = []) throws -> (Int, JSONValue?) {
    let client = try HTTPClient(port: port, timeout: .seconds(120))
    defer { client.close() }
    let r = try client.request(method: "POST", path: path, headers: [("Content-Type", "application/json")] + headers, body: body)
    return (r.status, try? JSONParser.parse(r.body))
}

func get(_ path: String, port: Int, headers: [(String, String)] = []) throws -> (Int, String) {
    let client = try HTTPClient(port: port, timeout: .seconds(60))
    defer { client.close() }
    let r = try client.request(method: "GET", path: path, headers: headers)
    return (r.status, r.text)
}

/// A streamed chat completion: the concatenated content and the usage chunk.
func streamChat(_ body: String, port: Int) throws -> (text: String, usage: JSONValue?, chunks: Int, done: Bool) {
    let client = try HTTPClient(port: port, timeout: .seconds(120))
    defer { client.close() }
    try client.sendRequest(method: "POST", path: "/v1/chat/completions", headers: [("Content-Type", "application/json")],
                           body: Array(body.utf8))
    let head = try client.readResponseHead()
    precondition(head.status == 200, "stream status \(head.status)")
    var text = "", usage: JSONValue?, chunks = 0, done = false
    while let event = try client.readEvent() {
        if event.data == "[DONE]" { done = true; break }
        let json = try JSONParser.parse(event.data)
        chunks += 1
        if let u = json["usage"], !u.isNull { usage = u }
        if let c = json["choices"]?[0]?["delta"]?["content"]?.stringValue { text += c }
    }
    return (text, usage, chunks, done)
}

/// A JSON string literal.
func quoted(_ s: String) -> String { JSONValue.string(s).jsonString }

func chatBody(_ user: String, model: String = "base", maxTokens: Int = 32, stream: Bool = false, extra: String = "") -> String {
    "{\"model\": \(quoted(model)), \"messages\": [{\"role\": \"user\", \"content\": \(quoted(user))}], \"max_tokens\": \(maxTokens), "
        + "\"temperature\": 0\(stream ? ", \"stream\": true, \"stream_options\": {\"include_usage\": true}" : "")\(extra)}"
}

/// Reads a Prometheus gauge/counter value from /metrics.
func metric(_ name: String, port: Int) throws -> Double? {
    let (_, text) = try get("/metrics", port: port)
    for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
        return Double(line.split(separator: " ").last ?? "")
    }
    return nil
}

func waitFor(seconds: Double = 20, _ condition: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try condition() { return true }
        usleep(50_000)
    }
    return false
}

/// Results written by concurrent workers, one slot each.
final class Slots<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [T]
    init(_ count: Int, _ initial: T) { values = Array(repeating: initial, count: count) }
    subscript(i: Int) -> T {
        get { lock.lock(); defer { lock.unlock() }; return values[i] }
        set { lock.lock(); values[i] = newValue; lock.unlock() }
    }
    var all: [T] { lock.lock(); defer { lock.unlock() }; return values }
}
