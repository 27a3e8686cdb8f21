import Foundation
import XCTest
import Adapters
import GGUF
@testable import HTTP
import JSON
import OpenAI
import SafeTensors

/// Every parser that sees outside bytes, fed thousands of damaged copies of small valid inputs
/// (Tests/FuzzTests/Corpus). The property: each input is accepted or rejected with a thrown error,
/// never a trap, and none takes longer than `Fuzz.hangLimit`. What is accepted is then used
/// (tensors read, fields queried, JSON re-serialized) so the reader's promises are exercised too.
final class FuzzTests: XCTestCase {
    static let jsonTokens = Fuzz.tokens([
        "{", "}", "[", "]", "\"", ":", ",", "null", "true", "false", "-", "0", "-0", "1e400", "-1e400", "1e-400",
        "9223372036854775808", "-9223372036854775809", "18446744073709551616", "0.5", "1E+2", ".5", "01", "NaN",
        "\\u0000", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\", "\u{FF}", "\u{C0}\u{80}", "\u{1F600}",
        "\"model\"", "\"messages\"", "\"role\"", "\"user\"", "\"assistant\"", "\"system\"", "\"tool\"", "\"content\"",
        "\"text\"", "\"type\"", "\"max_tokens\"", "\"max_completion_tokens\"", "\"temperature\"", "\"top_p\"",
        "\"top_k\"", "\"stream\"", "\"stream_options\"", "\"include_usage\"", "\"stop\"", "\"seed\"", "\"n\"",
        "\"lora\"", "\"name\"", "\"scale\"", "\"prompt\"", "\"echo\"", "\"logprobs\"", "\"presence_penalty\"",
        "\"frequency_penalty\"", "\"r\"", "\"lora_alpha\"", "\"target_modules\"", "\"rank_pattern\"",
        "\"alpha_pattern\"", "\"use_rslora\"", "\"use_dora\"", "\"layers_to_transform\"", "\"exclude_modules\"",
        "\"all-linear\"", "\"q_proj\"", "[[[[[[[[", "]]]]]]]]", "{\"a\":{\"a\":{\"a\":",
    ])

    static let httpTokens = Fuzz.tokens([
        "\r\n", "\r\n\r\n", "\r", "\n", ":", " ", "\t", "GET ", "POST ", "HEAD ", "CONNECT ", "OPTIONS * ",
        " HTTP/1.1", " HTTP/1.0", " HTTP/2.0", "Host: x\r\n", "Content-Length: ", "Content-Length: 0\r\n",
        "Content-Length: 18446744073709551615\r\n", "Content-Length: -1\r\n", "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Transfer-Encoding: chunked\r\n", "Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n", "ffffffffffffffff\r\n",
        "5;ext=\"x\"\r\n", "Expect: 100-continue\r\n", "Connection: close\r\n", "Connection: keep-alive\r\n",
        "Upgrade: websocket\r\nConnection: upgrade\r\n", " folded\r\n", "\u{0}", "\u{7F}", "%00", "/../",
    ])

    /// Writes an input to a scratch file (GGUFFile reads only from a mapping of a file).
    private static let scratch: String = {
        // /dev/shm when there is one: a tmpfs, so writing each input costs no disk I/O.
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? URL(fileURLWithPath: "/dev/shm") : FileManager.default.temporaryDirectory
        let dir = base.appendingPathComponent("loraserve-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent("input.gguf").path
    }()

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: (scratch as NSString).deletingLastPathComponent)
    }

    private func check(_ report: FuzzReport, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(report.inputs, report.accepted + (report.inputs - report.accepted))  // counts are consistent
        XCTAssertGreaterThan(report.accepted, 0, "\(report.target): not even the seed corpus was accepted", file: file, line: line)
        XCTAssertLessThan(report.accepted, report.inputs, "\(report.target): every mutant accepted - the harness is not mutating", file: file, line: line)
        for hang in report.hangs {
            XCTFail("\(report.target): input took \(hang.seconds) s: \(hang.input.prefix(64).map { String(format: "%02x", $0) }.joined())",
                    file: file, line: line)
        }
    }

    func testGGUFReader() {
        let report = Fuzz.run("gguf", corpus: Fuzz.corpus("gguf"), dictionary: Fuzz.tokens(["GGUF", "llama", "general.alignment"]), seed: 1) { bytes in
            let path = Self.scratch
            // Plain open/write: FileManager.createFile writes atomically (temporary file, rename), 50x slower.
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { XCTFail("cannot write \(path)"); return false }
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard written == bytes.count else { XCTFail("short write to \(path)"); return false }
            do {
                let file = try GGUFFile(path: path)
                for key in file.metadataKeys { _ = file.string(key); _ = file.int(key); _ = file.double(key); _ = file.bool(key) }
                for info in file.tensors {
                    let raw = file.data(of: info)
                    // A tensor the reader accepted lies inside the file.
                    if raw.count != info.byteCount { XCTFail("gguf: tensor \(info.name) has \(raw.count) bytes, info says \(info.byteCount)") }
                    if let values = try? file.dequantize(info), values.count != info.elementCount {
                        XCTFail("gguf: tensor \(info.name) dequantized to \(values.count) values, shape says \(info.elementCount)")
                    }
                }
                return true
            } catch { return false }
        }
        check(report)
    }

    func testSafeTensorsReader() {
        let dictionary = Self.jsonTokens + Fuzz.tokens(["\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"F32\"", "\"F16\"",
                                                        "\"BF16\"", "\"I64\"", "\"I32\"", "\"U8\"", "\"__metadata__\""])
        let report = Fuzz.run("safetensors", corpus: Fuzz.corpus("safetensors"), dictionary: dictionary, seed: 2) { bytes in
            do {
                let file = try SafeTensorsFile(data: Data(bytes))
                for info in file.tensors {
                    if file.bytes(of: info).count != info.dataOffsets.count {
                        XCTFail("safetensors: \(info.name) byte count differs from its offsets")
                    }
                    if let v = try? file.floats(info), v.count != info.elementCount { XCTFail("safetensors: \(info.name) float count") }
                    if let v = try? file.ints(info), v.count != info.elementCount { XCTFail("safetensors: \(info.name) int count") }
                }
                return true
            } catch { return false }
        }
        check(report)
    }

    func testAdapterConfigParser() {
        let report = Fuzz.run("peft", corpus: Fuzz.corpus("peft"), dictionary: Self.jsonTokens, seed: 3) { bytes in
            do {
                let config = try PEFTConfig.parse(Data(bytes), path: "fuzz/adapter_config.json")
                for key in ["model.layers.0.self_attn.q_proj", "model.layers.29.mlp.down_proj", "lm_head", ""] {
                    _ = config.targets(key)
                    if let (rank, alpha) = try? config.rankAndAlpha(for: key, path: "fuzz") { _ = config.scale(rank: rank, alpha: alpha) }
                }
                return true
            } catch { return false }
        }
        check(report)
    }

    func testChatCompletionRequestDecoder() {
        let report = Fuzz.run("chat", corpus: Fuzz.corpus("chat"), dictionary: Self.jsonTokens, seed: 4) { bytes in
            (try? ChatCompletionRequest(body: bytes)) != nil
        }
        check(report)
    }

    func testCompletionRequestDecoder() {
        let report = Fuzz.run("completion", corpus: Fuzz.corpus("completion"), dictionary: Self.jsonTokens, seed: 5) { bytes in
            (try? CompletionRequest(body: bytes)) != nil
        }
        check(report)
    }

    /// Besides not trapping: whatever parses re-serializes to JSON that parses to the same value.
    func testJSONParser() {
        let report = Fuzz.run("json", corpus: Fuzz.corpus("json") + Fuzz.corpus("chat"), dictionary: Self.jsonTokens, seed: 6) { bytes in
            guard let value = try? JSONParser.parse(bytes) else { return false }
            let again = try? JSONParser.parse(value.serialized())
            if again != value { XCTFail("json: \(String(decoding: bytes.prefix(200), as: UTF8.self)) does not survive a round trip") }
            return true
        }
        check(report)
    }

    /// The request parser alone, fed the input in one piece and then again in random splits
    /// (the outcome must not depend on how the bytes were split into reads).
    func testHTTPRequestParser() {
        var splitter = FuzzRandom(seed: 77)
        let report = Fuzz.run("http-parser", corpus: Fuzz.corpus("http"), dictionary: Self.httpTokens, seed: 7) { bytes in
            func parse(pieces: [ArraySlice<UInt8>]) -> (requests: [String], error: Bool) {
                let parser = HTTPRequestParser(maxHeaderBytes: 1024, maxBodyBytes: 4096)
                var requests: [String] = []
                var pending: [UInt8] = []
                for piece in pieces {
                    pending += piece
                    while !pending.isEmpty {
                        let result: Result<ParseOutput, HTTPParseError> = pending.withUnsafeBytes { raw in
                            Result { () throws(HTTPParseError) -> ParseOutput in try parser.feed(raw) }
                        }
                        guard case .success(let out) = result else { return (requests, true) }
                        pending.removeFirst(min(out.consumed, pending.count))
                        if let r = out.request { requests.append("\(r.method) \(r.path) \(r.query ?? "") \(r.body.count)") }
                        if out.upgrade { return (requests, false) }
                        if out.consumed == 0 && out.request == nil { break }
                    }
                }
                return (requests, false)
            }
            let whole = parse(pieces: [bytes[...]])
            var pieces: [ArraySlice<UInt8>] = []
            var i = 0
            while i < bytes.count {
                let n = 1 + splitter.below(16)
                pieces.append(bytes[i..<min(bytes.count, i + n)])
                i += n
            }
            let split = parse(pieces: pieces)
            if whole.requests != split.requests || whole.error != split.error {
                XCTFail("http: split reads changed the outcome for \(String(decoding: bytes.prefix(300), as: UTF8.self).debugDescription): \(whole) vs \(split)")
            }
            return !whole.error
        }
        check(report)
    }

    /// The whole connection state machine: input in random reads, every delivered request answered
    /// (alternately at once and as a stream), then EOF, a timer and shutdown.
    func testConnectionStateMachine() {
        var splitter = FuzzRandom(seed: 78)
        let report = Fuzz.run("http-connection", corpus: Fuzz.corpus("http"), dictionary: Self.httpTokens, seed: 8) { bytes in
            var c = ConnectionStateMachine.Configuration()
            c.maxHeaderBytes = 1024
            c.maxBodyBytes = 4096
            c.maxPipelinedRequests = 4
            var m = ConnectionStateMachine(configuration: c)
            var delivered = 0, failed = false
            func perform(_ actions: [ConnectionStateMachine.Action]) {
                var more: [ConnectionStateMachine.Action] = []
                for a in actions {
                    switch a {
                    case .deliver(let id, _):
                        delivered += 1
                        if id % 2 == 0 {
                            more += m.respond(id: id, status: 200, headers: [("Content-Type", "text/plain")], body: Array("ok".utf8))
                        } else {
                            more += m.startStream(id: id, status: 200, headers: [])
                            more += m.send(id: id, bytes: Array("part".utf8))
                            more += m.finish(id: id)
                        }
                    case .responseHead(let status) where status >= 400: failed = true
                    default: break
                    }
                }
                if !more.isEmpty { perform(more) }
            }
            perform(m.start())
            var i = 0
            while i < bytes.count, !m.isClosed {
                let n = 1 + splitter.below(64)
                perform(m.received(Array(bytes[i..<min(bytes.count, i + n)])))
                i += n
            }
            perform(m.timerFired(.body))
            perform(m.readEOF())
            perform(m.shutdown())
            perform(m.closed())
            return delivered > 0 && !failed
        }
        check(report)
    }
}
