import JSON

/// An error as the OpenAI API reports it: an HTTP status and the body
/// `{"error": {"message": …, "type": …, "param": …, "code": …}}`.
public struct OpenAIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// HTTP status code.
    public var status: Int
    /// OpenAI's error type, for example "invalid_request_error".
    public var type: String
    /// A message for humans; names the offending thing and, where it helps, what was expected.
    public var message: String
    /// The request parameter at fault, in path form ("temperature", "messages[1].content"), or nil.
    public var param: String?
    /// A machine-readable code such as "model_not_found", or nil.
    public var code: String?

    public init(status: Int, type: String, message: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.param = param
        self.code = code
    }

    /// The error envelope as a JSON value.
    public var json: JSONValue {
        ["error": [
            "message": .string(message),
            "type": .string(type),
            "param": JSONValue(param),
            "code": JSONValue(code),
        ]]
    }

    /// The error envelope as compact UTF-8 JSON, ready to send as the response body.
    public var jsonBody: [UInt8] { json.serialized() }

    public var description: String {
        "\(status) \(type)\(param.map { " [\($0)]" } ?? ""): \(message)"
    }
}

// MARK: - Standard cases

extension OpenAIError {
    /// 400 invalid_request_error, optionally naming the parameter at fault.
    public static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> OpenAIError {
        OpenAIError(status: 400, type: "invalid_request_error", message: message, param: param, code: code)
    }

    /// 400 for a body that is not valid JSON; the message carries the parser's offset.
    public static func invalidJSON(_ error: JSONError) -> OpenAIError {
        .invalidRequest("We could not parse the JSON body of your request: \(error.description).")
    }

    /// 401 for a wrong API key (OpenAI reports type invalid_request_error, code invalid_api_key).
    public static func invalidAPIKey(_ message: String = "Incorrect API key provided.") -> OpenAIError {
        OpenAIError(status: 401, type: "invalid_request_error", message: message, code: "invalid_api_key")
    }

    /// 401 authentication_error for a request without credentials.
    public static func authenticationRequired(
        _ message: String = "You didn't provide an API key. Provide it in the Authorization header as 'Bearer YOUR_KEY'."
    ) -> OpenAIError {
        OpenAIError(status: 401, type: "authentication_error", message: message)
    }

    /// 404 for an unknown model or adapter name.
    public static func modelNotFound(_ model: String) -> OpenAIError {
        OpenAIError(status: 404, type: "invalid_request_error",
                    message: "The model '\(model)' does not exist.", param: "model", code: "model_not_found")
    }

    /// 404 for an unknown path.
    public static func notFound(_ path: String) -> OpenAIError {
        OpenAIError(status: 404, type: "invalid_request_error", message: "Unknown request URL: \(path).")
    }

    /// 405 for a known path with the wrong HTTP method.
    public static func methodNotAllowed(_ method: String, _ path: String) -> OpenAIError {
        OpenAIError(status: 405, type: "invalid_request_error", message: "Method \(method) is not allowed for \(path).")
    }

    /// 413 for a body larger than the server accepts.
    public static func payloadTooLarge(limit: Int) -> OpenAIError {
        OpenAIError(status: 413, type: "invalid_request_error",
                    message: "The request body is larger than the limit of \(limit) bytes.", code: "request_too_large")
    }

    /// 429 when the server refuses more work for now (OpenAI's code rate_limit_exceeded).
    public static func rateLimited(_ message: String = "Too many requests; retry after a short wait.") -> OpenAIError {
        OpenAIError(status: 429, type: "rate_limit_error", message: message, code: "rate_limit_exceeded")
    }

    /// 500 server_error for a bug or unexpected failure on our side.
    public static func serverError(_ message: String = "The server had an error while processing your request.") -> OpenAIError {
        OpenAIError(status: 500, type: "server_error", message: message)
    }

    /// 503 when the server is overloaded or not ready.
    public static func serviceUnavailable(_ message: String = "The server is overloaded or not ready yet.") -> OpenAIError {
        OpenAIError(status: 503, type: "server_error", message: message, code: "service_unavailable")
    }
}
