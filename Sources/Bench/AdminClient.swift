import JSON

/// The server's adapter-management API: `GET /v1/adapters`, `POST /v1/adapters {"name","path","merged"}`,
/// `DELETE /v1/adapters/{name}`, authorised with `Authorization: Bearer <admin key>` when a key is given.
public final class AdminClient {
    /// A completed exchange: the status and the body (parsed when it is JSON).
    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
        public var json: JSONValue?
        public var isSuccess: Bool { (200..<300).contains(status) }

        /// The server's error message (`{"error": {"message": …}}`), else the body text.
        public var message: String {
            if let m = json?["error"]?["message"]?.stringValue { return m }
            if let m = json?["error"]?.stringValue { return m }
            let text = String(decoding: body.prefix(500), as: UTF8.self)
            return text.isEmpty ? "HTTP \(status)" : text
        }
    }

    public let url: BenchURL
    public let adminKey: String?
    public let timeout: Double
    private let connection: HTTPConnection

    public init(url: BenchURL, adminKey: String?, timeout: Double = 60) {
        self.url = url
        self.adminKey = adminKey
        self.timeout = timeout
        connection = HTTPConnection(target: url)
    }

    public func list() throws(HTTPClientError) -> Response {
        try exchange("GET", "/v1/adapters")
    }

    public func add(name: String, path: String, merged: Bool) throws(HTTPClientError) -> Response {
        let body: JSONValue = ["name": .string(name), "path": .string(path), "merged": .bool(merged)]
        return try exchange("POST", "/v1/adapters", body: body.serialized())
    }

    public func remove(name: String) throws(HTTPClientError) -> Response {
        try exchange("DELETE", "/v1/adapters/" + Self.percentEncode(name))
    }

    /// The model names of `GET /v1/models` (`data[].id`), in the server's order.
    public func modelIDs() throws(HTTPClientError) -> (Response, [String]) {
        let response = try exchange("GET", "/v1/models")
        let ids = response.json?["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
        return (response, ids)
    }

    public func close() { connection.close() }

    func exchange(_ method: String, _ path: String, body: [UInt8] = []) throws(HTTPClientError) -> Response {
        var headers: [(String, String)] = [("Accept", "application/json")]
        if !body.isEmpty { headers.append(("Content-Type", "application/json")) }
        if let adminKey { headers.append(("Authorization", "Bearer \(adminKey)")) }
        var received: [UInt8] = []
        let deadline = MonotonicClock.now() &+ MonotonicClock.nanoseconds(timeout)
        let head = try connection.send(method: method, path: path, headers: headers, body: body, deadline: deadline,
                                       onBody: { received.append(contentsOf: $0) })
        let json = try? JSONParser.parse(received)
        return Response(status: head.status, body: received, json: json)
    }

    /// Escapes everything but RFC 3986 unreserved characters, for a name inside a path.
    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
