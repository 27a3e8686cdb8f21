import Foundation
import JSON
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A tiny HTTP/1.1 server for the tests: a listening socket on 127.0.0.1 (any free port), one thread per
/// connection, keep-alive. It answers `POST /v1/chat/completions` with a canned completion — streamed as
/// SSE in a chunked body cut into 7-byte HTTP chunks, or as one JSON body — and misbehaves on a fixed plan
/// by the order requests arrive in: every 7th gets a 500, every 11th has its connection dropped in the
/// middle of the stream, every 5th success closes the kept-alive connection afterwards without saying so.
/// A request for model `stall` gets no answer for 2 s; model `plain` never gets a stream. It also serves the adapter admin API.
/// It records what it did, so the tests compare the bench's counts with the server's own.
///
/// `@unchecked Sendable`: the counters are touched only under `lock`; the socket is closed once, in `stop`.
final class TestChatServer: @unchecked Sendable {
    enum Action: Equatable {
        case completed(tokens: Int)
        case failed500
        case dropped
        case stalled
    }

    private let lock = NSLock()
    private(set) var port: Int = 0
    private var listener: Int32 = -1
    private var requestCount = 0
    private var actionsList: [Action] = []
    private var adapterSet: Set<String> = []
    private var adds = 0
    private var removes = 0
    private var stopped = false

    var actions: [Action] { lock.lock(); defer { lock.unlock() }; return actionsList }
    var adapters: Set<String> { lock.lock(); defer { lock.unlock() }; return adapterSet }
    var adminCounts: (adds: Int, removes: Int) { lock.lock(); defer { lock.unlock() }; return (adds, removes) }

    init() throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 128) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let fd = listener
        Thread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    return
                }
                Thread { [self] in serve(client) }.start()
            }
        }.start()
    }

    func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    deinit { stop() }

    // MARK: - One connection

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            // Read one request: head up to CRLFCRLF, then Content-Length bytes.
            var headEnd: Int?
            while headEnd == nil {
                if let r = find(buffer, Array("\r\n\r\n".utf8)) { headEnd = r; break }
                let n = recv(fd, &chunk, chunk.count, 0)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            guard let end = headEnd else { return }
            let head = String(decoding: buffer[0..<end], as: UTF8.self)
            let lines = head.components(separatedBy: "\r\n")
            let requestLine = lines[0].split(separator: " ")
            guard requestLine.count >= 2 else { return }
            let method = String(requestLine[0]), path = String(requestLine[1])
            var length = 0
            for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
                length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            while buffer.count < end + 4 + length {
                let n = recv(fd, &chunk, chunk.count, 0)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            let body = Array(buffer[(end + 4)..<(end + 4 + length)])
            buffer.removeFirst(end + 4 + length)
            guard respond(fd, method: method, path: path, body: body) else { return }
        }
    }

    /// Answers one request; false when the connection must be closed.
    private func respond(_ fd: Int32, method: String, path: String, body: [UInt8]) -> Bool {
        let json = try? JSONParser.parse(body)
        if path.hasPrefix("/v1/adapters") {
            return respondAdmin(fd, method: method, path: path, json: json)
        }
        if path == "/v1/models" {
            return write(fd, jsonResponse(200, #"{"object":"list","data":[{"id":"base"}]}"#))
        }
        guard method == "POST", path == "/v1/chat/completions", let json else {
            return write(fd, jsonResponse(404, #"{"error":{"message":"not found"}}"#))
        }
        let model = json["model"]?.stringValue ?? ""
        let maxTokens = json["max_tokens"]?.intValue ?? 16
        // Model "plain" gets a JSON body even when it asked to stream (a server that ignores "stream").
        let stream = (json["stream"]?.boolValue ?? false) && model != "plain"
        let includeUsage = json["stream_options"]?["include_usage"]?.boolValue ?? false
        lock.lock()
        requestCount += 1
        let k = requestCount
        let action: Action = model == "stall" ? .stalled : k % 7 == 0 ? .failed500 : (k % 11 == 0 && stream) ? .dropped : .completed(tokens: maxTokens)
        actionsList.append(action)
        lock.unlock()

        switch action {
        case .stalled:
            Thread.sleep(forTimeInterval: 2)
            return false
        case .failed500:
            return write(fd, jsonResponse(500, #"{"error":{"message":"canned failure","type":"server_error"}}"#))
        case .dropped, .completed:
            break
        }
        let closeAfter = k % 5 == 0
        if !stream {
            let text = String(repeating: "w ", count: maxTokens)
            let reply = #"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"\#(text)"},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":\#(maxTokens),"total_tokens":\#(maxTokens + 3)}}"#
            return write(fd, jsonResponse(200, reply)) && !closeAfter
        }
        // Two tokens per content chunk, so token counts must come from usage, not from chunks.
        var events = #"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"# + "\n\n"
        for _ in 0..<((maxTokens + 1) / 2) {
            events += #"data: {"choices":[{"index":0,"delta":{"content":"ab"}}]}"# + "\n\n"
        }
        events += #"data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"# + "\n\n"
        if includeUsage {
            events += #"data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":\#(maxTokens),"total_tokens":\#(maxTokens + 3)}}"# + "\r\n\r\n"
        }
        events += "data: [DONE]\n\n"
        let payload = Array(events.utf8)
        guard write(fd, Array("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)) else { return false }
        var offset = 0
        while offset < payload.count {
            let piece = payload[offset..<min(offset + 7, payload.count)]
            guard write(fd, Array((String(piece.count, radix: 16) + "\r\n").utf8) + piece + Array("\r\n".utf8)) else { return false }
            offset += piece.count
            if action == .dropped && offset > payload.count / 2 { return false }
        }
        return write(fd, Array("0\r\n\r\n".utf8)) && !closeAfter
    }

    private func respondAdmin(_ fd: Int32, method: String, path: String, json: JSONValue?) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        switch method {
        case "POST":
            guard let name = json?["name"]?.stringValue, json?["path"]?.stringValue != nil else {
                return write(fd, jsonResponse(400, #"{"error":{"message":"name and path required"}}"#))
            }
            adapterSet.insert(name)
            adds += 1
            return write(fd, jsonResponse(201, #"{"name":"\#(name)"}"#))
        case "DELETE":
            let name = String(path.dropFirst("/v1/adapters/".count)).removingPercentEncoding ?? ""
            guard adapterSet.remove(name) != nil else {
                return write(fd, jsonResponse(404, #"{"error":{"message":"adapter '\#(name)' not found"}}"#))
            }
            removes += 1
            return write(fd, jsonResponse(200, #"{"deleted":true}"#))
        default:
            let list = adapterSet.sorted().map { #"{"name":"\#($0)"}"# }.joined(separator: ",")
            return write(fd, jsonResponse(200, #"{"object":"list","data":[\#(list)]}"#))
        }
    }

    private func jsonResponse(_ status: Int, _ body: String) -> [UInt8] {
        let bytes = Array(body.utf8)
        return Array("HTTP/1.1 \(status) X\r\nContent-Type: application/json\r\nContent-Length: \(bytes.count)\r\n\r\n".utf8) + bytes
    }

    private func write(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    private func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }
}
