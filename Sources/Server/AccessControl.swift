import HTTP
import OpenAI

/// API keys: inference endpoints need one of `apiKeys` (when any is configured); admin
/// endpoints (adapter management) need one of `adminKeys` when any is configured, else they
/// follow the inference rule. Keys are compared in constant time.
public struct AccessControl: Sendable {
    public let apiKeys: [[UInt8]]
    public let adminKeys: [[UInt8]]

    public init(apiKeys: [String], adminKeys: [String]) {
        self.apiKeys = apiKeys.map { Array($0.utf8) }
        self.adminKeys = adminKeys.map { Array($0.utf8) }
    }

    public enum Scope: Sendable { case inference, admin }

    /// nil when the request may proceed, else the error to answer with (401, or 403 for a valid
    /// inference key on an admin endpoint).
    public func check(_ request: HTTPRequest, scope: Scope) -> OpenAIError? {
        let required = scope == .admin && !adminKeys.isEmpty ? adminKeys : apiKeys
        if required.isEmpty { return nil }
        guard let header = request.header("authorization") else {
            return .authenticationRequired()
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            return .authenticationRequired()
        }
        let presented = Array(parts[1].utf8)
        if Self.matchesAny(presented, required) { return nil }
        if scope == .admin, Self.matchesAny(presented, apiKeys) {
            return OpenAIError(status: 403, type: "permission_error",
                               message: "This key may not manage adapters; use an admin key.", code: "insufficient_permissions")
        }
        return .invalidAPIKey()
    }

    /// Compares against every key, each in time independent of where the bytes differ.
    static func matchesAny(_ presented: [UInt8], _ keys: [[UInt8]]) -> Bool {
        var found = false
        for key in keys where constantTimeEqual(presented, key) { found = true }
        return found
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        // Length differences are not secret enough to matter; contents are.
        var diff = UInt8(a.count == b.count ? 0 : 1)
        let n = max(a.count, b.count)
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            diff |= x ^ y
        }
        return diff == 0
    }
}
