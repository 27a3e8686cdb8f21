// The http_parser bridge. This is the only file that imports CHTTPParser.
import CHTTPParser

/// What one call to ``HTTPRequestParser/feed(_:)`` produced.
struct ParseOutput {
    /// Bytes of the input the parser consumed; the caller keeps the rest for the next call.
    var consumed: Int = 0
    /// The head of a request completed during this call.
    var head: RequestHead?
    /// A whole request completed during this call (the parser pauses after each one).
    var request: HTTPRequest?
    /// Whether the connection may be kept open after this request (http_should_keep_alive).
    var keepAlive: Bool = true
    /// The request asked for a protocol upgrade or was CONNECT; the bytes after it are not HTTP.
    var upgrade: Bool = false
}

/// The parts of a request head the connection state machine needs before the body arrives.
struct RequestHead: Equatable {
    var method: String
    var isHTTP10: Bool
    var expectsContinue: Bool
    var contentLength: UInt64?
}

/// Incremental request parser over http_parser 2.9 that enforces the header and body limits.
///
/// Not thread-safe; one per connection, used on the loop thread (or in tests).
///
/// Soundness of the unsafe parts: the `http_parser` and settings structs live in memory this object
/// allocates and frees. `parser.data` holds an *unretained* pointer to `self`; the C callbacks run only
/// synchronously inside `http_parser_execute`, which is called from ``feed(_:)`` while `self` is alive,
/// so the pointer is never dangling and there is no retain to balance.
final class HTTPRequestParser {
    private let parser: UnsafeMutablePointer<http_parser>
    private let settings: UnsafeMutablePointer<http_parser_settings>
    let maxHeaderBytes: Int
    let maxBodyBytes: Int

    // Accumulation for the message in progress.
    private var url: [UInt8] = []
    private var field: [UInt8] = []
    private var value: [UInt8] = []
    private var lastWasValue = false
    private var headers: [(name: String, value: String)] = []
    private var body: [UInt8] = []
    private var headerBytes = 0
    // Per-call results written by the callbacks.
    private var output = ParseOutput()
    private var limitError: HTTPParseError?
    private var failed: HTTPParseError?
    // Strict framing (see StrictFraming): body ranges of the current call, the current chunk's unread size.
    private var framing = StrictFraming()
    private var feedBase: UnsafeRawPointer?
    private var bodyRanges: [(offset: Int, count: Int, endsChunk: Bool)] = []
    private var chunkRemaining: UInt64?

    init(maxHeaderBytes: Int, maxBodyBytes: Int) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        parser = .allocate(capacity: 1)
        settings = .allocate(capacity: 1)
        http_parser_init(parser, HTTP_REQUEST)
        http_parser_settings_init(settings)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        settings.pointee.on_message_begin = { p in HTTPRequestParser.from(p).messageBegin() }
        settings.pointee.on_url = { p, at, n in HTTPRequestParser.from(p).data(.url, at, n) }
        settings.pointee.on_header_field = { p, at, n in HTTPRequestParser.from(p).data(.field, at, n) }
        settings.pointee.on_header_value = { p, at, n in HTTPRequestParser.from(p).data(.value, at, n) }
        settings.pointee.on_headers_complete = { p in HTTPRequestParser.from(p).headersComplete() }
        settings.pointee.on_body = { p, at, n in HTTPRequestParser.from(p).data(.body, at, n) }
        settings.pointee.on_chunk_header = { p in HTTPRequestParser.from(p).chunkHeader() }
        settings.pointee.on_message_complete = { p in HTTPRequestParser.from(p).messageComplete() }
    }

    deinit {
        parser.deallocate()
        settings.deallocate()
    }

    private static func from(_ p: UnsafeMutablePointer<http_parser>?) -> HTTPRequestParser {
        // `p` is our own `parser`, whose `data` was set in init (see the type comment).
        Unmanaged<HTTPRequestParser>.fromOpaque(p!.pointee.data).takeUnretainedValue()
    }

    /// True while some bytes of a request have been consumed but the request is not complete.
    private(set) var inMessage = false
    /// True between the end of a head and the end of its message.
    private(set) var inBody = false

    /// Feeds bytes; stops after at most one complete request (the rest is left unconsumed).
    /// Throws the first parse error; after that the parser must not be used again.
    func feed(_ bytes: UnsafeRawBufferPointer) throws(HTTPParseError) -> ParseOutput {
        if let failed { throw failed }
        output = ParseOutput()
        guard let base = bytes.baseAddress, bytes.count > 0 else { return output }
        feedBase = base
        bodyRanges.removeAll(keepingCapacity: true)
        let n = http_parser_execute(
            parser, settings, base.assumingMemoryBound(to: CChar.self), bytes.count)
        feedBase = nil
        output.consumed = n
        let errno = http_errno(rawValue: parser.pointee.http_errno)
        if (errno == HPE_OK || errno == HPE_PAUSED) && !checkFraming(UnsafeRawBufferPointer(rebasing: bytes[..<n])) {
            let error = HTTPParseError.malformed(
                name: "HPE_STRICT", description: "bare CR or missing CRLF after chunk data")
            failed = error
            throw error
        }
        if errno == HPE_PAUSED {
            // We paused after a complete message; unpause for the next call.
            http_parser_pause(parser, 0)
        } else if errno != HPE_OK {
            let error = limitError ?? (errno == HPE_HEADER_OVERFLOW ? .headersTooLarge(limit: maxHeaderBytes) : .malformed(
                name: String(cString: http_errno_name(errno)), description: String(cString: http_errno_description(errno))))
            failed = error
            throw error
        } else if parser.pointee.upgrade != 0 {
            output.upgrade = true
        }
        return output
    }

    /// Runs the consumed bytes that were not body data through the strict framing check.
    private func checkFraming(_ consumed: UnsafeRawBufferPointer) -> Bool {
        var position = 0
        for range in bodyRanges {
            guard framing.check(UnsafeRawBufferPointer(rebasing: consumed[position..<range.offset])) else { return false }
            if range.endsChunk { framing.chunkDataEnded() }
            position = range.offset + range.count
        }
        return framing.check(UnsafeRawBufferPointer(rebasing: consumed[position...]))
    }

    // MARK: - Callbacks (return 0 to continue, nonzero to abort with HPE_CB_*; see headersComplete)

    private enum Span { case url, field, value, body }

    private func messageBegin() -> Int32 {
        url = []; field = []; value = []; lastWasValue = false
        headers = []; body = []; headerBytes = 0; chunkRemaining = nil
        inMessage = true
        return 0
    }

    private func data(_ span: Span, _ at: UnsafePointer<CChar>?, _ n: Int) -> Int32 {
        guard let at, n > 0 else { return 0 }
        let chunk = UnsafeRawBufferPointer(start: at, count: n)
        if span == .body {
            if body.count + n > maxBodyBytes {
                limitError = .bodyTooLarge(limit: maxBodyBytes)
                return 1
            }
            body.append(contentsOf: chunk)
            var endsChunk = false
            if let remaining = chunkRemaining {
                let left = remaining - min(remaining, UInt64(n))
                endsChunk = left == 0
                chunkRemaining = endsChunk ? nil : left
            }
            if let feedBase { bodyRanges.append((feedBase.distance(to: UnsafeRawPointer(at)), n, endsChunk)) }
            return 0
        }
        // Count the ": " and CRLF of each field too, so a flood of tiny fields is measured by its wire size.
        let startsField = span == .field && (lastWasValue || field.isEmpty)
        headerBytes += n + (startsField ? 4 : 0)
        if headerBytes > maxHeaderBytes {
            limitError = .headersTooLarge(limit: maxHeaderBytes)
            return 1
        }
        switch span {
        case .url: url.append(contentsOf: chunk)
        case .field:
            if lastWasValue && !flushHeader() { return 1 }
            field.append(contentsOf: chunk)
            lastWasValue = false
        case .value:
            value.append(contentsOf: chunk)
            lastWasValue = true
        case .body: break
        }
        return 0
    }

    /// Appends the field in progress; false (with `limitError` set) if its name is not a token.
    private func flushHeader() -> Bool {
        if !field.isEmpty || !value.isEmpty {
            // Lenient http_parser builds accept e.g. spaces in names ("Transfer-Encoding :"); RFC 9112 §5.1 does not.
            guard ResponseEncoding.isToken(String(decoding: field, as: UTF8.self)) else {
                limitError = .malformed(
                    name: "HPE_INVALID_HEADER_TOKEN",
                    description: "invalid header name '\(String(decoding: field.prefix(64), as: UTF8.self))'")
                return false
            }
            // http_parser drops leading whitespace of a value; trailing whitespace is not part of it either (RFC 9110 §5.5).
            var end = value.count
            while end > 0 && (value[end - 1] == 32 || value[end - 1] == 9) { end -= 1 }
            headers.append((String(decoding: field, as: UTF8.self), String(decoding: value[..<end], as: UTF8.self)))
        }
        field = []; value = []
        lastWasValue = false
        return true
    }

    private func chunkHeader() -> Int32 {
        // http_parser stores the size of the chunk that starts here in content_length.
        let size = parser.pointee.content_length
        // Refuse a chunk that cannot fit before waiting for its bytes (otherwise the client gets a body timeout).
        if size > UInt64(max(0, maxBodyBytes - body.count)) {
            limitError = .bodyTooLarge(limit: maxBodyBytes)
            return -1
        }
        chunkRemaining = size == 0 ? nil : size
        return 0
    }

    private var requestHead: RequestHead?

    /// Returns 0 to read the body, -1 to fail. (1 and 2 are not errors here: they tell http_parser to skip
    /// the body, which would parse the body bytes as the next request.)
    private func headersComplete() -> Int32 {
        guard flushHeader() else { return -1 }
        let p = parser.pointee
        guard p.http_major == 1 else {
            limitError = .unsupportedVersion(major: Int(p.http_major), minor: Int(p.http_minor))
            return -1
        }
        let isChunked = (UInt32(p.flags) & F_CHUNKED.rawValue) != 0
        let hasLength = (UInt32(p.flags) & F_CONTENTLENGTH.rawValue) != 0
        if hasLength && p.content_length > UInt64(max(0, maxBodyBytes)) {
            limitError = .bodyTooLarge(limit: maxBodyBytes)
            return -1
        }
        if hasLength { body.reserveCapacity(Int(p.content_length)) }
        let expect = headers.contains {
            $0.name.lowercased() == "expect" && $0.value.lowercased().trimmingSpaces == "100-continue"
        }
        let head = RequestHead(
            method: String(cString: http_method_str(http_method(rawValue: p.method))),
            isHTTP10: p.http_major == 1 && p.http_minor == 0,
            expectsContinue: expect && !(p.http_major == 1 && p.http_minor == 0) && (isChunked || p.content_length > 0),
            contentLength: hasLength ? p.content_length : nil)
        requestHead = head
        output.head = head
        inBody = true
        return 0
    }

    private func messageComplete() -> Int32 {
        guard flushHeader() else { return 1 }  // trailers
        let (path, query) = splitTarget(url)
        let p = parser.pointee
        output.request = HTTPRequest(
            method: requestHead?.method ?? String(cString: http_method_str(http_method(rawValue: p.method))),
            path: path, query: query, version: (Int(p.http_major), Int(p.http_minor)),
            headers: headers, body: body)
        output.keepAlive = http_should_keep_alive(parser) != 0
        headers = []; body = []; url = []
        inMessage = false
        inBody = false
        http_parser_pause(parser, 1)
        return 0
    }
}

/// Splits a request target into path and optional query (origin-form; absolute-form keeps the whole target as path).
func splitTarget(_ target: [UInt8]) -> (String, String?) {
    if let q = target.firstIndex(of: UInt8(ascii: "?")) {
        return (String(decoding: target[..<q], as: UTF8.self), String(decoding: target[(q + 1)...], as: UTF8.self))
    }
    return (String(decoding: target, as: UTF8.self), nil)
}

extension String {
    var trimmingSpaces: Substring {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}
