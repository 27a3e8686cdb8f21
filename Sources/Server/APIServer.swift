import Adapters
import Engine
import Foundation
import GGUF
import HTTP
import JSON
import Llama
import OpenAI
import Synchronization
import Tokenizer

/// The OpenAI-compatible server: routes HTTP requests (on the event-loop thread) to the engine
/// (its own thread), the adapter registry and the chat template. Slow work that must not block
/// the loop (rendering and tokenizing prompts, loading adapters from disk) runs on `work`.
///
/// `@unchecked Sendable`: every stored property is immutable after init or is itself
/// thread-safe (`Mutex`, `Engine`, `AdapterRegistry`, `HTTPServer`); `http` is set once in
/// `start()` before the loop can call `handle`.
public final class APIServer: HTTPHandler, @unchecked Sendable {
    public let configuration: ServerConfiguration
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let template: ChatTemplate
    public let engine: Engine
    public let registry: AdapterRegistry
    public let modelID: String
    let access: AccessControl
    let logger: Logger
    let counters = Mutex(ServerCounters())
    let work = DispatchQueue(label: "loraserve.work", attributes: .concurrent)
    let created = Int64(Date().timeIntervalSince1970)
    private(set) var http: HTTPServer?

    /// Loads the model, tokenizer, chat template and every adapter under the adapters folder.
    public init(configuration: ServerConfiguration, modelPath: String, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let t0 = Date()
        let file = try GGUFFile(path: modelPath)
        model = try LlamaModel(path: modelPath, threads: configuration.threads)
        tokenizer = try Tokenizer(gguf: file)
        template = try ChatTemplate(gguf: file, tokenizer: tokenizer)
        // Like llama.cpp's server: the model's id is its file name; "base" is accepted too.
        modelID = URL(fileURLWithPath: modelPath).deletingPathExtension().lastPathComponent
        var engineConfig = EngineConfiguration(tokenBudget: configuration.batchTokenBudget,
                                               maxRunningSequences: configuration.maxRunningSequences,
                                               maxQueuedRequests: configuration.maxQueuedRequests,
                                               prefixCacheBytes: configuration.prefixCacheMB << 20)
        if configuration.contextSize > 0 { engineConfig.contextLength = configuration.contextSize }
        engine = try Engine(model: model, tokenizer: tokenizer, configuration: engineConfig)
        logger.info("model loaded", [("model", .string(modelPath)), ("id", .string(modelID)),
                                     ("seconds", .number(Date().timeIntervalSince(t0))),
                                     ("context", JSONValue(engine.contextLength)), ("threads", JSONValue(configuration.threads))])

        func absolute(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.path }
        let adaptersDirectory = absolute(configuration.adaptersDirectory)
        let roots = ([adaptersDirectory] + configuration.adapterRoots.map(absolute))
            .filter { FileManager.default.fileExists(atPath: $0) }
        registry = try AdapterRegistry(model: model, roots: roots,
                                       residentBudget: configuration.adapterMemoryBudgetMB << 20)
        access = AccessControl(apiKeys: configuration.apiKeys, adminKeys: configuration.adminKeys)
        if FileManager.default.fileExists(atPath: adaptersDirectory) {
            for result in try registry.scan(directory: adaptersDirectory) {
                switch result.outcome {
                case .success(let info):
                    logger.info("adapter registered", [("name", .string(info.name)), ("rank", JSONValue(info.rank)),
                                                       ("targets", .string(info.targets.sorted().joined(separator: ",")))])
                case .failure(let error):
                    logger.warning("adapter skipped", [("path", .string(result.path)), ("error", .string(error.description))])
                }
            }
        }
    }

    /// Starts the engine and the HTTP server; returns the bound port.
    @discardableResult
    public func start() throws -> Int {
        engine.start()
        var h = HTTPServerConfiguration(host: configuration.host, port: configuration.port)
        h.maxBodyBytes = configuration.maxBodyBytes
        h.maxHeaderBytes = configuration.maxHeaderBytes
        h.headerTimeout = .milliseconds(Int64(configuration.headerTimeoutSeconds * 1000))
        h.bodyTimeout = .milliseconds(Int64(configuration.bodyTimeoutSeconds * 1000))
        h.idleTimeout = .milliseconds(Int64(configuration.idleTimeoutSeconds * 1000))
        h.maxConnections = configuration.maxConnections
        let server = HTTPServer(configuration: h, handler: self)
        http = server
        let port = try server.start()
        logger.info("listening", [("host", .string(configuration.host)), ("port", JSONValue(port))])
        return port
    }

    /// Runs until SIGINT/SIGTERM (or `stop`), draining in-flight requests up to the deadline.
    public func waitForShutdown() {
        guard let http else { return }
        let deadline = Duration.milliseconds(Int64(configuration.shutdownDeadlineSeconds * 1000))
        http.handleSignals(deadline: deadline) { [logger] signal in
            logger.info("shutting down", [("signal", JSONValue(Int(signal)))])
        }
        http.waitUntilStopped()
        engine.stop(timeout: .seconds(1))
        logger.info("stopped")
    }

    /// Graceful stop from code (tests).
    public func stop(deadline: Duration = .seconds(5)) {
        http?.shutdown(deadline: deadline)
        http?.waitUntilStopped()
        engine.stop(timeout: .seconds(1))
    }

    // MARK: - Routing

    public func handle(_ request: HTTPRequest, responder: HTTPResponder) {
        let path = request.path
        switch (request.method, path) {
        case ("GET", "/health"):
            reply(responder, route: "/health", status: 200, json: ["status": "ok"])
        case ("GET", "/metrics"):
            let text = metricsText()
            count(route: "/metrics", status: 200)
            responder.respond(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")], body: Array(text.utf8))
        case ("GET", "/v1/models"):
            guard authorized(request, responder, scope: .inference, route: path) else { return }
            reply(responder, route: path, status: 200, json: modelList())
        case ("POST", "/v1/chat/completions"):
            guard authorized(request, responder, scope: .inference, route: path) else { return }
            work.async { self.generate(.chat, request, responder) }
        case ("POST", "/v1/completions"):
            guard authorized(request, responder, scope: .inference, route: path) else { return }
            work.async { self.generate(.text, request, responder) }
        case ("GET", "/v1/adapters"):
            guard authorized(request, responder, scope: .admin, route: path) else { return }
            reply(responder, route: path, status: 200, json: ["object": "list", "data": .array(registry.list().map(adapterJSON))])
        case ("POST", "/v1/adapters"), ("POST", "/v1/load_lora_adapter"):
            guard authorized(request, responder, scope: .admin, route: path) else { return }
            work.async { self.addAdapter(request, responder, vllm: path == "/v1/load_lora_adapter") }
        case ("POST", "/v1/unload_lora_adapter"):
            guard authorized(request, responder, scope: .admin, route: path) else { return }
            removeAdapter(request, responder, name: nil)
        case ("DELETE", _) where path.hasPrefix("/v1/adapters/"):
            guard authorized(request, responder, scope: .admin, route: "/v1/adapters/{name}") else { return }
            let name = String(path.dropFirst("/v1/adapters/".count)).removingPercentEncoding ?? ""
            removeAdapter(request, responder, name: name)
        default:
            let known = ["/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/adapters",
                         "/v1/load_lora_adapter", "/v1/unload_lora_adapter"]
            if known.contains(path) || path.hasPrefix("/v1/adapters/") {
                fail(responder, route: path, .methodNotAllowed(request.method, path))
            } else {
                fail(responder, route: "other", .notFound(path))
            }
        }
    }

    // MARK: - Generation

    private func generate(_ kind: CompletionKind, _ request: HTTPRequest, _ responder: HTTPResponder) {
        let route = kind == .chat ? "/v1/chat/completions" : "/v1/completions"
        let started = ContinuousClock.now
        // Parse.
        let modelName: String, selections: [LoraSelection], stream: Bool, includeUsage: Bool
        let maxTokens: Int?, sampling: SamplingOptions
        let prompt: [Int32]
        var handles: [AdapterHandle] = []
        do {
            switch kind {
            case .chat:
                let r = try ChatCompletionRequest(body: request.body)
                modelName = r.model; selections = r.lora; stream = r.stream; includeUsage = r.includeUsage
                maxTokens = r.maxTokens; sampling = r.sampling
                do {
                    prompt = try template.encode(messages: r.messages.map { ChatTemplate.message($0.role.rawValue, $0.content) },
                                                 addGenerationPrompt: true)
                } catch {
                    throw OpenAIError.invalidRequest("The chat template refused the conversation: \(error.message)", param: "messages",
                                                     code: "template_error")
                }
            case .text:
                let r = try CompletionRequest(body: request.body)
                modelName = r.model; selections = r.lora; stream = r.stream; includeUsage = r.includeUsage
                maxTokens = r.maxTokens; sampling = r.sampling
                switch r.prompt {
                case .text(let s): prompt = tokenizer.encode(s, parseSpecial: false)
                case .tokens(let ids): prompt = ids
                }
            }
            handles = try resolveAdapters(model: modelName, lora: selections)
        } catch let e as OpenAIError {
            for h in handles { h.release() }
            fail(responder, route: route, e)
            return
        } catch {
            for h in handles { h.release() }
            fail(responder, route: route, .invalidRequest("\(error)"))
            return
        }

        // Adapters → engine payload.
        var payload = AdapterPayload()
        for (i, h) in handles.enumerated() {
            let scale = Float(i < selections.count && selections.count == handles.count ? selections[i].scale : 1)
            switch h.adapter {
            case .unmerged(let a): payload.adapters.append(ScaledAdapter(a, scale: scale))
            case .merged(let w):
                if payload.merged != nil {
                    for h in handles { h.release() }
                    fail(responder, route: route, .invalidRequest("At most one merged adapter can be applied to a request.", param: "lora"))
                    return
                }
                payload.merged = w
            }
        }

        let limit = engine.contextLength
        if prompt.count >= limit {
            for h in handles { h.release() }
            fail(responder, route: route, .invalidRequest(
                "This model's maximum context length is \(limit) tokens, but the prompt has \(prompt.count) tokens.",
                param: "messages", code: "context_length_exceeded"))
            return
        }
        let budget = min(maxTokens ?? configuration.defaultMaxTokens, limit - prompt.count)
        let echoName = modelName.isEmpty ? modelID : modelName
        let parameters = sampling.parameters
        let held = handles
        let out = GenerationResponder(
            kind: kind, responder: responder, stream: stream, includeUsage: includeUsage, wantLogprobs: parameters.logprobs,
            modelName: echoName, tokenizer: tokenizer,
            onFinish: { [weak self] summary, status in
                for h in held { h.release() }
                self?.finished(route: route, model: echoName, summary: summary, status: status, started: started)
            })
        let generation = GenerationRequest(
            prompt: prompt, sampling: parameters, stop: sampling.stopConditions, maxTokens: max(1, budget),
            adapters: payload, onEvent: { event in out.handle(event) })
        do {
            let handle = try engine.submit(generation)
            out.begin()
            responder.onCancel { handle.cancel() }
        } catch {
            for h in handles { h.release() }
            let e: OpenAIError
            switch error {
            case .queueFull: e = .rateLimited("The server is busy (\(configuration.maxQueuedRequests) requests waiting); retry shortly.")
            case .promptTooLong(let tokens, let limit):
                e = .invalidRequest("This model's maximum context length is \(limit) tokens, but the prompt has \(tokens) tokens.",
                                    param: "messages", code: "context_length_exceeded")
            case .shuttingDown, .notStarted: e = .serviceUnavailable("The server is shutting down.")
            default: e = .invalidRequest(error.description)
            }
            fail(responder, route: route, e)
        }
    }

    /// `model` (the base's id, "base", or an adapter name) and the `lora` extension to handles.
    private func resolveAdapters(model: String, lora: [LoraSelection]) throws(OpenAIError) -> [AdapterHandle] {
        var handles: [AdapterHandle] = []
        func lookup(_ name: String, param: String) throws(OpenAIError) -> AdapterHandle {
            do { return try registry.lookup(name) } catch {
                for h in handles { h.release() }
                if error.isNotFound { throw OpenAIError.modelNotFound(name) }
                throw OpenAIError.serverError("Adapter '\(name)' could not be loaded: \(error.description)")
            }
        }
        if !lora.isEmpty {
            for s in lora { handles.append(try lookup(s.name, param: "lora")) }
            if !isBase(model), !lora.contains(where: { $0.name == model }) {
                handles.insert(try lookup(model, param: "model"), at: 0)
            }
            return handles
        }
        if isBase(model) { return [] }
        return [try lookup(model, param: "model")]
    }

    private func isBase(_ name: String) -> Bool { name.isEmpty || name == modelID || name == "base" }

    private func finished(route: String, model: String, summary: GenerationSummary, status: Int, started: ContinuousClock.Instant) {
        count(route: route, status: status)
        var fields: [(String, JSONValue)] = [
            ("method", "POST"), ("path", .string(route)), ("status", JSONValue(status)), ("model", .string(model)),
            ("prompt_tokens", JSONValue(summary.promptTokens)), ("cached_tokens", JSONValue(summary.cachedPromptTokens)),
            ("completion_tokens", JSONValue(summary.completionTokens)), ("finish", .string(summary.outcome.finishReason)),
            ("duration_ms", .number(milliseconds(ContinuousClock.now - started))),
        ]
        if let t = summary.timeToFirstToken { fields.append(("ttft_ms", .number(milliseconds(t)))) }
        logger.info("request", fields)
    }

    // MARK: - Adapters

    private func addAdapter(_ request: HTTPRequest, _ responder: HTTPResponder, vllm: Bool) {
        let route = vllm ? "/v1/load_lora_adapter" : "/v1/adapters"
        let body: JSONObject
        do {
            guard let o = try JSONParser.parse(request.body).objectValue else { throw OpenAIError.invalidRequest("The body must be a JSON object.") }
            body = o
        } catch let e as OpenAIError { fail(responder, route: route, e); return } catch {
            fail(responder, route: route, .invalidJSON(error as! JSONError)); return
        }
        let nameKey = vllm ? "lora_name" : "name", pathKey = vllm ? "lora_path" : "path"
        guard let name = body[nameKey]?.stringValue, !name.isEmpty else {
            fail(responder, route: route, .invalidRequest("'\(nameKey)' (a non-empty string) is required.", param: nameKey)); return
        }
        guard let path = body[pathKey]?.stringValue, !path.isEmpty else {
            fail(responder, route: route, .invalidRequest("'\(pathKey)' (a non-empty string) is required.", param: pathKey)); return
        }
        let merged = body["merged"]?.boolValue ?? false
        if isBase(name) {
            fail(responder, route: route, .invalidRequest("'\(name)' is the base model's name.", param: nameKey)); return
        }
        let t0 = ContinuousClock.now
        do {
            let info = try registry.register(name: name, path: path, merged: merged)
            logger.info("adapter registered", [("name", .string(name)), ("merged", .bool(merged)),
                                               ("load_ms", .number(milliseconds(ContinuousClock.now - t0)))])
            if vllm {
                count(route: route, status: 200)
                responder.respond(status: 200, headers: [("Content-Type", "text/plain")],
                                  body: "Success: LoRA adapter '\(name)' added successfully.")
            } else {
                reply(responder, route: route, status: 200, json: adapterJSON(info))
            }
        } catch {
            fail(responder, route: route, registryError(error))
        }
    }

    private func removeAdapter(_ request: HTTPRequest, _ responder: HTTPResponder, name: String?) {
        let route = name == nil ? "/v1/unload_lora_adapter" : "/v1/adapters/{name}"
        var target = name ?? ""
        if name == nil {
            guard let o = try? JSONParser.parse(request.body).objectValue, let n = o["lora_name"]?.stringValue else {
                fail(responder, route: route, .invalidRequest("'lora_name' (a string) is required.", param: "lora_name")); return
            }
            target = n
        }
        do {
            try registry.remove(name: target)
            logger.info("adapter removed", [("name", .string(target))])
            if name == nil {
                count(route: route, status: 200)
                responder.respond(status: 200, headers: [("Content-Type", "text/plain")],
                                  body: "Success: LoRA adapter '\(target)' removed successfully.")
            } else {
                reply(responder, route: route, status: 200, json: ["id": .string(target), "object": "adapter", "deleted": true])
            }
        } catch {
            fail(responder, route: route, registryError(error))
        }
    }

    private func registryError(_ error: AdapterRegistryError) -> OpenAIError {
        if error.isNotFound { return OpenAIError(status: 404, type: "invalid_request_error", message: error.description, code: "model_not_found") }
        switch error {
        case .alreadyRegistered: return OpenAIError(status: 409, type: "invalid_request_error", message: error.description, code: "adapter_exists")
        case .outsideRoots: return OpenAIError(status: 403, type: "invalid_request_error", message: error.description, param: "path", code: "path_not_allowed")
        default: return .invalidRequest(error.description, param: "path")
        }
    }

    func adapterJSON(_ info: AdapterInfo) -> JSONValue {
        [
            "name": .string(info.name), "object": "adapter", "path": .string(info.path), "format": .string(info.format.rawValue),
            "rank": JSONValue(info.rank), "alpha": .number(info.alpha), "scale": .number(Double(info.scale)),
            "targets": .array(info.targets.sorted().map { .string($0) }),
            "size_bytes": JSONValue(info.sizeBytes), "resident": .bool(info.resident), "merged": .bool(info.merged),
            "requests_served": JSONValue(info.requestsServed), "parent": .string(modelID),
        ]
    }

    private func modelList() -> JSONValue {
        var models = [ModelInfo(id: modelID, created: created)]
        for a in registry.list() { models.append(ModelInfo(id: a.name, created: created, parent: modelID)) }
        return ModelInfo.listJSON(models)
    }

    // MARK: - Helpers

    private func authorized(_ request: HTTPRequest, _ responder: HTTPResponder, scope: AccessControl.Scope, route: String) -> Bool {
        if let e = access.check(request, scope: scope) { fail(responder, route: route, e); return false }
        return true
    }

    private func reply(_ responder: HTTPResponder, route: String, status: Int, json: JSONValue) {
        count(route: route, status: status)
        responder.respond(status: status, headers: [("Content-Type", "application/json")], body: json.serialized())
    }

    func fail(_ responder: HTTPResponder, route: String, _ e: OpenAIError) {
        count(route: route, status: e.status)
        logger.info("request", [("path", .string(route)), ("status", JSONValue(e.status)), ("error", .string(e.code ?? e.type))])
        var headers = [("Content-Type", "application/json")]
        if e.status == 429 || e.status == 503 { headers.append(("Retry-After", "1")) }
        responder.respond(status: e.status, headers: headers, body: e.jsonBody)
    }

    private func count(route: String, status: Int) { counters.withLock { $0.count(route: route, status: status) } }

    func metricsText() -> String {
        renderMetrics(engine: engine.metrics(), http: http?.metrics ?? HTTPServerMetrics(), server: counters.withLock { $0 },
                      adaptersRegistered: registry.list().count, adapterResidentBytes: registry.residentBytes)
    }
}

func milliseconds(_ d: Duration) -> Double {
    let (s, atto) = d.components
    return (Double(s) + Double(atto) * 1e-18) * 1000
}
