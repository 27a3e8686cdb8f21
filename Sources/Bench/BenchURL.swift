/// Where the load goes: `http://host[:port][/base]`. Only plain HTTP; the base path (if any) is prefixed
/// to every request path (`http://127.0.0.1:8080/proxy` + `/v1/chat/completions`).
public struct BenchURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// Without a trailing slash; empty for the root.
    public var basePath: String

    public init(host: String, port: Int, basePath: String = "") {
        self.host = host
        self.port = port
        self.basePath = basePath
    }

    /// Parses `http://host[:port][/path]`; IPv6 literals go in brackets (`http://[::1]:8080`).
    public init(parsing text: String) throws(BenchError) {
        let prefix = "http://"
        guard text.lowercased().hasPrefix(prefix) else {
            throw BenchError("URL '\(text)' must start with http:// (https is not supported)")
        }
        var rest = Substring(text.dropFirst(prefix.count))
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        while path.hasSuffix("/") { path.removeLast() }
        var host: String
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw BenchError("URL '\(text)': unclosed '[' in host") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw BenchError("URL '\(text)': unexpected text after ']'") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.firstIndex(of: ":") {
            host = String(rest[..<colon])
            portText = rest[rest.index(after: colon)...]
        } else {
            host = String(rest)
        }
        guard !host.isEmpty else { throw BenchError("URL '\(text)' has no host") }
        var port = 80
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw BenchError("URL '\(text)': port '\(portText)' is not a number in 1…65535")
            }
            port = p
        }
        if host.lowercased() == "localhost" { host = "127.0.0.1" }
        self.init(host: host, port: port, basePath: path)
    }

    /// The Host header value.
    public var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == 80 ? h : "\(h):\(port)"
    }

    public var description: String { "http://\(hostHeader)\(basePath)" }
}
