import Foundation

/// Puts a load run together from options: resolves the base model name (asking the server's
/// `/v1/models` when none was given and the mix needs one), builds the mix and the prompt source.
public enum BenchRun {
    public static func prepare(_ options: inout LoadOptions) throws(BenchError) -> LoadGenerator {
        try options.validate()
        let adapters = options.adapterNames
        let needsBase = adapters.isEmpty || options.baseFraction > 0
        if needsBase && options.model == nil {
            options.model = try discoverBaseModel(options)
        }
        let mix = try ModelMix(baseModel: options.model, adapters: adapters, distribution: options.distribution,
                               baseFraction: options.baseFraction)
        let prompts: PromptSource
        if let path = options.promptsFile {
            prompts = try PromptSource(file: path)
        } else {
            prompts = try PromptSource(generatedTokens: options.promptTokens)
        }
        return LoadGenerator(options: options, mix: mix, prompts: prompts)
    }

    /// The first model id of `GET /v1/models`.
    static func discoverBaseModel(_ options: LoadOptions) throws(BenchError) -> String {
        let client = AdminClient(url: options.url, adminKey: options.apiKey, timeout: min(options.timeout, 30))
        defer { client.close() }
        let response: AdminClient.Response
        let ids: [String]
        do { (response, ids) = try client.modelIDs() } catch {
            throw BenchError("cannot ask \(options.url) for its models (\(error)); pass --model NAME")
        }
        guard response.isSuccess, let first = ids.first else {
            throw BenchError("GET \(options.url)/v1/models gave HTTP \(response.status) and no model id; pass --model NAME")
        }
        return first
    }
}
