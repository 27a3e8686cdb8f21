import Foundation
import HTTP
import JSON

/// Tells a running server about a new adapter: `POST {url}/v1/adapters` with `{"name", "path"}`.
public enum AdapterRegistration {
    /// `url` is `http://host[:port][/prefix]`. Returns the server's reply body on 2xx; throws with its reply otherwise.
    public static func register(url: String, name: String, path: String, apiKey: String? = nil,
                                timeout: Duration = .seconds(60)) throws(TrainerError) -> String {
        guard let parsed = URLComponents(string: url), parsed.scheme == "http", let host = parsed.host, !host.isEmpty else {
            throw TrainerError("--register: '\(url)' is not an http:// URL (https is not supported)")
        }
        let port = parsed.port ?? 80
        var prefix = parsed.path
        while prefix.hasSuffix("/") { prefix.removeLast() }
        let body: JSONValue = ["name": .string(name), "path": .string(path)]
        var headers: [(String, String)] = [("Content-Type", "application/json"), ("Host", "\(host):\(port)"), ("Connection", "close")]
        if let apiKey { headers.append(("Authorization", "Bearer \(apiKey)")) }
        do {
            let client = try HTTPClient(host: host, port: port, timeout: timeout)
            defer { client.close() }
            let response = try client.request(method: "POST", path: prefix + "/v1/adapters", headers: headers,
                                              body: body.serialized())
            guard (200..<300).contains(response.status) else {
                throw TrainerError("--register: \(url)/v1/adapters answered \(response.status): \(response.text)")
            }
            return response.text
        } catch let e as TrainerError {
            throw e
        } catch {
            throw TrainerError("--register: cannot reach \(url): \(error)")
        }
    }
}
