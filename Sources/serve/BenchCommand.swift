import ArgumentParser
import Bench
import Foundation
import JSON
import Adapters
import Llama

/// `serve bench …`: benchmarks. The default, `load`, load-tests a running OpenAI-compatible server;
/// `runtime` measures the model without HTTP.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks.",
        subcommands: [LoadBenchCommand.self, RuntimeBenchCommand.self],
        defaultSubcommand: LoadBenchCommand.self)
}

/// `serve bench [load] --url URL …`: closed- or open-loop load against a running server, with an adapter mix,
/// optional adapter churn, and a table, JSON and SVG of the result. Flags override `--scenario FILE`.
struct LoadBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load-test a running OpenAI-compatible server (the default of 'serve bench').",
        discussion: "Flags override the values of --scenario FILE (bench/scenarios/*.json; keys are the flags in snake_case).")

    @Option(help: "Scenario file (JSON); flags given here override its values.") var scenario: String?
    @Option(help: "Server base URL (default http://127.0.0.1:8080).") var url: String?
    @Option(help: "Closed loop: this many concurrent clients (default 1).") var clients: Int?
    @Option(help: "Open loop: Poisson arrivals at this many requests/s.") var rate: Double?
    @Option(help: "Stop issuing requests after this many seconds.") var duration: Double?
    @Option(help: "Stop after this many requests (default 100 when no --duration).") var requests: Int?
    @Option(help: "Prompts from a JSONL file: {\"messages\": [...]}, {\"prompt\": \"...\"} or a string per line.") var prompts: String?
    @Option(help: "Generated prompts of about this many tokens (default 128).") var promptTokens: Int?
    @Option(help: "max_tokens of each request: N, or a range A-B drawn uniformly (default 128).") var maxTokens: String?
    @Flag(inversion: .prefixedNo, help: "Stream responses (SSE) and measure time to first token (default on).") var stream: Bool?
    @Option(help: "API key (Authorization: Bearer).") var apiKey: String?
    @Option(help: "Base model name (default: the first id of GET /v1/models).") var model: String?
    @Option(help: "Adapter names to send, comma-separated.") var adapters: String?
    @Option(help: "Adapter names PREFIX0 … PREFIX(N-1) (with --adapter-prefix).") var adapterCount: Int?
    @Option(help: "Prefix of generated adapter names (default bench-).") var adapterPrefix: String?
    @Option(help: "Adapter choice: uniform, zipf:EXP or weights:W1,W2,… (default uniform).") var distribution: String?
    @Option(help: "Share of requests sent to the base model when adapters are given (0…1, default 0).") var baseFraction: Double?
    @Option(help: "Adapter churn: add (and remove) adapters through the admin API at this many per second.") var churnRate: Double?
    @Option(help: "Adapter folder or .gguf the churn registers under fresh names (must be allowed by the server).") var churnPath: String?
    @Option(help: "Churn adapters kept live before the oldest is removed (default 4).") var churnKeep: Int?
    @Option(help: "Name prefix of churn adapters (default churn-).") var churnPrefix: String?
    @Flag(help: "Churn adapters are registered merged.") var churnMerged = false
    @Option(help: "Admin key for the churn's adapter API calls (default: the API key).") var adminKey: String?
    @Option(help: "Sampling temperature sent with each request (default: not sent).") var temperature: Double?
    @Option(help: "JSON object merged into every request body, e.g. '{\"top_p\": 0.9}'.") var extraBody: String?
    @Option(help: "Per-request timeout in seconds (default 300).") var timeout: Double?
    @Option(help: "Seed of the request mix, lengths and arrivals (default 1).") var seed: UInt64?
    @Option(help: "Open loop: most requests in flight at once (default 256).") var maxConnections: Int?
    @Option(help: "A name for the run (shown in the table, JSON and plot).") var name: String?
    @Option(help: "Write the whole result as JSON to this file.") var json: String?
    @Option(help: "Write an SVG of throughput over time and latency distributions to this file.") var plot: String?
    @Flag(help: "No live progress line on stderr.") var quiet = false

    func run() throws {
        var options = LoadOptions()
        do {
            if let scenario { try options.apply(scenarioFile: scenario) }
            try applyFlags(to: &options)
        } catch {
            throw CommandError(error.message)
        }
        signal(SIGPIPE, SIG_IGN)
        let generator: LoadGenerator
        do { generator = try BenchRun.prepare(&options) } catch { throw CommandError(error.message) }

        // Ctrl-C: stop issuing and report what finished; a second one quits at once.
        signal(SIGINT, SIG_IGN)
        let interrupts = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        nonisolated(unsafe) var interrupted = false  // only touched on the source's serial handler
        interrupts.setEventHandler {
            if interrupted { _exit(130) }
            interrupted = true
            FileHandle.standardError.write(Data("\ninterrupted: waiting for requests in flight (Ctrl-C again to quit)\n".utf8))
            generator.stop()
        }
        interrupts.resume()

        let tty = isatty(STDERR_FILENO) != 0
        let quiet = self.quiet
        let report: @Sendable (ResultCollector.Snapshot) -> Void = { snapshot in
            if tty {
                FileHandle.standardError.write(Data(("\r\u{1B}[2K" + snapshot.line).utf8))
            } else if Int(snapshot.elapsed.rounded()) % 5 == 0 {
                FileHandle.standardError.write(Data((snapshot.line + "\n").utf8))
            }
        }
        let progress = quiet ? nil : report
        let mode = options.rate.map { "\($0) req/s open loop" } ?? "\(options.clients ?? 1) clients"
        if !quiet {
            FileHandle.standardError.write(Data("bench: \(options.url), \(mode), \(generator.mix.names.count) model names\n".utf8))
        }
        let result = generator.run(progress: progress)
        interrupts.cancel()
        if tty && !quiet { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
        print(result.table)
        if let path = options.jsonPath {
            do { try Data(result.json.serialized()).write(to: URL(fileURLWithPath: path)) } catch {
                throw CommandError("cannot write \(path): \(error.localizedDescription)")
            }
            FileHandle.standardError.write(Data("wrote \(path)\n".utf8))
        }
        if let path = options.plotPath {
            do { try SVGPlot.render(result).write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw CommandError("cannot write \(path): \(error.localizedDescription)")
            }
            FileHandle.standardError.write(Data("wrote \(path)\n".utf8))
        }
    }

    private func applyFlags(to o: inout LoadOptions) throws(BenchError) {
        if let url { o.url = try BenchURL(parsing: url) }
        if let clients { o.clients = clients; o.rate = nil }
        if let rate { o.rate = rate; o.clients = nil }
        if let duration { o.duration = duration }
        if let requests { o.requests = requests }
        if let prompts { o.promptsFile = prompts }
        if let promptTokens { o.promptTokens = promptTokens; o.promptsFile = prompts }
        if let maxTokens { o.maxTokens = try LoadOptions.parseMaxTokens(maxTokens) }
        if let stream { o.stream = stream }
        if let apiKey { o.apiKey = apiKey }
        if let model { o.model = model }
        if let adapters { o.adapters = LoadOptions.parseNameList(adapters); o.adapterCount = nil }
        if let adapterCount { o.adapterCount = adapterCount; if adapters == nil { o.adapters = [] } }
        if let adapterPrefix { o.adapterPrefix = adapterPrefix }
        if let distribution { o.distribution = try AdapterDistribution(parsing: distribution) }
        if let baseFraction { o.baseFraction = baseFraction }
        if let churnRate { o.churnRate = churnRate }
        if let churnPath { o.churnPath = churnPath }
        if let churnKeep { o.churnKeep = churnKeep }
        if let churnPrefix { o.churnPrefix = churnPrefix }
        if churnMerged { o.churnMerged = true }
        if let adminKey { o.adminKey = adminKey }
        if let temperature { o.temperature = temperature }
        if let extraBody {
            guard case .object(let object)? = try? JSONParser.parse(extraBody) else {
                throw BenchError("--extra-body must be a JSON object, not '\(extraBody)'")
            }
            o.extraBody = object
        }
        if let timeout { o.timeout = timeout }
        if let seed { o.seed = seed }
        if let maxConnections { o.maxConnections = maxConnections }
        if let name { o.name = name }
        if let json { o.jsonPath = json }
        if let plot { o.plotPath = plot }
    }
}

/// `serve bench runtime`: prompt processing, single-stream generation and batched decode tokens/s.
struct RuntimeBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime", abstract: "Model runtime throughput (no HTTP): prefill, decode, batched decode.")

    @Option(help: "Path to a Llama-architecture GGUF model (default: the one in models/).") var model: String?
    @Option(help: "Threads (comma-separated list to compare).") var threads: String = "1,2"
    @Option(help: "Prompt length for prompt processing.") var promptTokens: Int = 512
    @Option(help: "Tokens generated for single-stream generation.") var generateTokens: Int = 128
    @Option(help: "Concurrent sequences for batched decode (comma-separated).") var batches: String = "8,32"
    @Option(help: "Decode steps for batched decode.") var batchSteps: Int = 32
    @Option(help: "Tokens already in each stream's cache when batched decode starts (attention grows with it).")
    var context: Int = RuntimeBenchmark.defaultContext

    @Flag(help: "Also time products of 1-64 tokens with one matrix (kernel speed in cache), and of 1-32 tokens over every projection of every layer (weights from memory).")
    var kernels = false
    @Option(name: .customLong("adapter"), help: "Adapters (PEFT folder or GGUF LoRA, repeatable): adds batched decode with each, unmerged and merged.")
    var adapterPaths: [String] = []
    @Option(help: "Distinct copies of each adapter spread over the streams (each copy is its own LoRA group).") var distinct: Int = 32

    func run() throws {
        let path = try DefaultModel.resolve(model)
        let threadCounts = threads.split(separator: ",").compactMap { Int($0) }
        let batchSizes = batches.split(separator: ",").compactMap { Int($0) }
        let t0 = Date()
        var loaded = try LlamaModel(path: path, threads: threadCounts.first ?? 2)
        print(String(format: "model load: %.3f s  (%@)", Date().timeIntervalSince(t0), path))
        print("decode kernels: \(RuntimeBenchmark.kernelName)  (LORASERVE_KERNELS=avx512 leaves out AMX, avx2 also AVX-512)")
        if kernels {
            let bench = RuntimeBenchmark(model: loaded)
            for p in [Projection.q, .down] {
                for tokens in [1, 2, 4, 8, 16, 64] {
                    let r = bench.matrixProduct(layer: 0, p, tokens: tokens, repeats: max(20, 2000 / tokens))
                    print(String(format: "kernel %@ layer 0, %2d tokens: %.2f ns per block and token, weights at %.2f GB/s (1 thread, hot cache)",
                                 "\(p)", tokens, r.nanosecondsPerBlockToken, r.gigabytesPerSecond))
                }
            }
            for tokens in [1, 8, 32] {
                let r = bench.allProjections(tokens: tokens, repeats: max(3, 48 / tokens))
                print(String(format: "kernel all projections of all layers, %2d tokens: %.2f ns per block and token, weights at %.2f GB/s (1 thread, from memory)",
                             tokens, r.nanosecondsPerBlockToken, r.gigabytesPerSecond))
            }
        }
        for t in threadCounts {
            if loaded.pool.threadCount != t { loaded = try LlamaModel(path: path, threads: t) }
            let bench = RuntimeBenchmark(model: loaded)
            var results = [try bench.promptProcessing(length: promptTokens)]
            results.append(try bench.decode(streams: 1, steps: generateTokens))
            for b in batchSizes { results.append(try bench.decode(streams: b, steps: batchSteps, context: context)) }
            for adapterPath in adapterPaths {
                let shape = BaseModelShape(loaded.config)
                let name = URL(fileURLWithPath: adapterPath).lastPathComponent
                var unmerged: [LoRAAdapter?] = []
                for i in 0..<max(1, distinct) {
                    unmerged.append(try AdapterLoader.load(path: adapterPath, name: "\(name)-\(i)", base: shape).makeLoRAAdapter(for: loaded.config))
                }
                let file = try AdapterLoader.load(path: adapterPath, name: name, base: shape)
                let merged = try file.makeMergedWeights(base: loaded.weights, config: loaded.config)
                for b in batchSizes {
                    results.append(try bench.decode(streams: b, steps: batchSteps, context: context,
                                                    adapters: .unmerged(unmerged, label: "\(unmerged.count) x \(name) unmerged")))
                    results.append(try bench.decode(streams: b, steps: batchSteps, context: context, adapters: .merged([merged], label: "\(name) merged")))
                }
            }
            for r in results {
                print(String(format: "threads %d  %-60@ %8.1f tokens/s  (%d tokens in %.3f s)",
                             t, r.name as NSString, r.tokensPerSecond, r.tokens, r.seconds))
            }
        }
    }
}
