import ArgumentParser
import Bench
import Foundation
import Llama

/// `serve bench …`: benchmarks. `runtime` measures the model without HTTP.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks.",
        subcommands: [RuntimeBenchCommand.self])
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

    @Flag(help: "Also time single-token products over one matrix (kernel speed in cache).") var kernels = false

    func run() throws {
        let path = try DefaultModel.resolve(model)
        let threadCounts = threads.split(separator: ",").compactMap { Int($0) }
        let batchSizes = batches.split(separator: ",").compactMap { Int($0) }
        let t0 = Date()
        var loaded = try LlamaModel(path: path, threads: threadCounts.first ?? 2)
        print(String(format: "model load: %.3f s  (%@)", Date().timeIntervalSince(t0), path))
        if kernels {
            let bench = RuntimeBenchmark(model: loaded)
            for p in [Projection.q, .down] {
                let r = bench.matvec(layer: 0, p, repeats: 2000)
                print(String(format: "kernel %@ layer 0: %.2f GB/s, %.1f ns/row (1 thread, hot cache)", "\(p)", r.gigabytesPerSecond, r.nanosecondsPerRow))
            }
        }
        for t in threadCounts {
            if loaded.pool.threadCount != t { loaded = try LlamaModel(path: path, threads: t) }
            let bench = RuntimeBenchmark(model: loaded)
            var results = [try bench.promptProcessing(length: promptTokens)]
            results.append(try bench.decode(streams: 1, steps: generateTokens))
            for b in batchSizes { results.append(try bench.decode(streams: b, steps: batchSteps)) }
            for r in results {
                print(String(format: "threads %d  %-40@ %8.1f tokens/s  (%d tokens in %.3f s)",
                             t, r.name as NSString, r.tokensPerSecond, r.tokens, r.seconds))
            }
        }
    }
}
