import Foundation
import SafeTensors
import TestSupport
import XCTest

final class SafeTensorsTests: XCTestCase {
    // MARK: - Reference files

    func testReadsLogitsBaseHeader() throws {
        let file = try SafeTensorsFile(path: TestPaths.referenceFile("logits_base.safetensors").path)
        XCTAssertEqual(Set(file.tensors.map(\.name)), ["logits.0", "logits.1", "input_ids.0", "input_ids.1"])
        XCTAssertEqual(file.tensor(named: "logits.0")?.shape, [37, 49152])
        XCTAssertEqual(file.tensor(named: "logits.1")?.shape, [14, 49152])
        XCTAssertEqual(file.tensor(named: "input_ids.0")?.shape, [37])
        XCTAssertEqual(file.tensor(named: "input_ids.0")?.dtype, .i32)
        XCTAssertEqual(file.tensor(named: "logits.0")?.dtype, .f32)
        XCTAssertEqual(file.byteSize, 10_027_532)
        XCTAssertTrue(file.metadata.isEmpty)
    }

    func testReadsLogitsBaseValues() throws {
        let file = try SafeTensorsFile(path: TestPaths.referenceFile("logits_base.safetensors").path)
        // Expected values read with numpy.frombuffer from the same file.
        let ids0 = try file.ints(named: "input_ids.0")
        XCTAssertEqual(ids0.count, 37)
        XCTAssertEqual(Array(ids0.prefix(5)), [1, 9690, 198, 2683, 359])
        XCTAssertEqual(Array(try file.ints(named: "input_ids.1").suffix(3)), [339, 5248, 1535])
        let logits1 = try file.floats(named: "logits.1")
        XCTAssertEqual(logits1.count, 14 * 49152)
        XCTAssertEqual(logits1[0], 13.625532, accuracy: 1e-6)
        XCTAssertEqual(logits1[logits1.count - 1], 5.608503, accuracy: 1e-6)
        XCTAssertEqual(logits1[49152 * 3 + 7], -2.7250338, accuracy: 1e-6)
        XCTAssertThrowsError(try file.floats(named: "input_ids.0"))
        XCTAssertThrowsError(try file.ints(named: "logits.0"))
        XCTAssertThrowsError(try file.floats(named: "nope"))
    }

    // MARK: - Conversions

    func testHalfAndBFloat16Conversion() {
        // IEEE 754 binary16 constants.
        XCTAssertEqual(halfBitsToFloat(0x3C00), 1)
        XCTAssertEqual(halfBitsToFloat(0xC000), -2)
        XCTAssertEqual(halfBitsToFloat(0x7BFF), 65504)
        XCTAssertEqual(halfBitsToFloat(0x0001), 0x1p-24)
        XCTAssertEqual(halfBitsToFloat(0x0400), 0x1p-14)
        XCTAssertEqual(halfBitsToFloat(0x3555), 0.333251953125)
        XCTAssertEqual(halfBitsToFloat(0x7C00), .infinity)
        XCTAssertEqual(halfBitsToFloat(0xFC00), -.infinity)
        XCTAssertTrue(halfBitsToFloat(0x7E00).isNaN)
        XCTAssertEqual(halfBitsToFloat(0x8000).sign, .minus)
        XCTAssertEqual(bfloat16BitsToFloat(0x3F80), 1)
        XCTAssertEqual(bfloat16BitsToFloat(0xC040), -3)
    }

    func testReadsF16AndBF16Tensors() throws {
        // Two tensors, hand-assembled: F16 [1.0, -2.0], BF16 [1.0, -3.0].
        let header = #"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[4,8]}}"#
        var bytes = lengthPrefix(header)
        bytes += [0x00, 0x3C, 0x00, 0xC0, 0x80, 0x3F, 0x40, 0xC0]
        let file = try SafeTensorsFile(data: Data(bytes))
        XCTAssertEqual(try file.floats(named: "a"), [1, -2])
        XCTAssertEqual(try file.floats(named: "b"), [1, -3])
    }

    // MARK: - Malformed files

    func testRefusesMalformedFiles() throws {
        let good = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertNoThrow(try SafeTensorsFile(data: Data(lengthPrefix(good) + [UInt8](repeating: 0, count: 8))))

        assertRefused(Data([1, 2, 3]), containing: "too short")
        var absurd = [UInt8](repeating: 0xFF, count: 8)
        absurd += [UInt8](repeating: 0, count: 16)
        assertRefused(Data(absurd), containing: "absurd")
        assertRefused(Data(lengthPrefix("{\"x\": [") + [UInt8](repeating: 0, count: 8)), containing: "not valid JSON")
        assertRefused(Data(lengthPrefix("[1, 2]")), containing: "not an object")
        // Header length past the end of the file.
        assertRefused(Data(Array(lengthPrefix(good).prefix(20))), containing: "runs past the end")
        // Data section truncated.
        assertRefused(Data(lengthPrefix(good) + [0, 0, 0]), containing: "run past the end", tensor: "x")
        // Trailing bytes after the last tensor.
        assertRefused(Data(lengthPrefix(good) + [UInt8](repeating: 0, count: 12)), containing: "data section holds")
        let overlap = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        assertRefused(Data(lengthPrefix(overlap) + [UInt8](repeating: 0, count: 8)), containing: "overlap", tensor: "y")
        let gap = #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        assertRefused(Data(lengthPrefix(gap) + [UInt8](repeating: 0, count: 8)), containing: "gap", tensor: "x")
        let wrongShape = #"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        assertRefused(Data(lengthPrefix(wrongShape) + [UInt8](repeating: 0, count: 8)), containing: "needs 12 bytes", tensor: "x")
        let unknownType = #"{"x":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}"#
        assertRefused(Data(lengthPrefix(unknownType) + [UInt8](repeating: 0, count: 8)), containing: "unsupported dtype 'F8_E4M3'", tensor: "x")
        let hugeShape = #"{"x":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}"#
        assertRefused(Data(lengthPrefix(hugeShape) + [UInt8](repeating: 0, count: 8)), containing: "overflow", tensor: "x")
        let negative = #"{"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#
        assertRefused(Data(lengthPrefix(negative) + [UInt8](repeating: 0, count: 8)), containing: "negative", tensor: "x")
        let badMetadata = #"{"__metadata__":{"k":1},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        assertRefused(Data(lengthPrefix(badMetadata) + [UInt8](repeating: 0, count: 8)), containing: "not a string")
    }

    // MARK: - Writer

    func testWriterRoundTrip() throws {
        let tensors = [
            SafeTensorsWriter.Tensor(name: "b.weight", shape: [2, 3], values: [1, 2, 3, 4, 5, -6.5]),
            SafeTensorsWriter.Tensor(name: "a.weight", shape: [1], values: [.pi]),
            SafeTensorsWriter.Tensor(name: "weird \"name\"\n", shape: [0], values: []),
        ]
        let metadata = ["format": "pt", "note": "quote \" and backslash \\"]
        let data = try SafeTensorsWriter.encode(tensors, metadata: metadata)
        let headerLength = data.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        XCTAssertEqual(headerLength % 8, 0)
        // The header must be plain JSON that another parser accepts.
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8 ..< 8 + headerLength)) as? [String: Any]
        XCTAssertEqual(header?["__metadata__"] as? [String: String], metadata)

        let file = try SafeTensorsFile(data: data)
        XCTAssertEqual(file.metadata, metadata)
        for tensor in tensors {
            XCTAssertEqual(file.tensor(named: tensor.name)?.shape, tensor.shape)
            XCTAssertEqual(try file.floats(named: tensor.name), tensor.values)
        }

        let folder = try temporaryFolder()
        let path = folder.appendingPathComponent("t.safetensors").path
        try SafeTensorsWriter.write(tensors, metadata: metadata, to: path)
        try SafeTensorsWriter.write(tensors, metadata: [:], to: path) // replaces
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["t.safetensors"])
        XCTAssertEqual(try SafeTensorsFile(path: path).metadata, [:])

        XCTAssertThrowsError(try SafeTensorsWriter.encode([.init(name: "x", shape: [2], values: [1])]))
        XCTAssertThrowsError(try SafeTensorsWriter.encode([.init(name: "x", shape: [1], values: [1]),
                                                           .init(name: "x", shape: [1], values: [1])]))
    }

    // MARK: - Helpers

    private func assertRefused(_ data: Data, containing text: String, tensor: String? = nil,
                               file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try SafeTensorsFile(data: data, path: "bad.safetensors")
            XCTFail("accepted a malformed file; expected '\(text)'", file: file, line: line)
        } catch {
            XCTAssertTrue(error.description.contains(text), "message: \(error)", file: file, line: line)
            XCTAssertTrue(error.description.contains("bad.safetensors"), "message: \(error)", file: file, line: line)
            if let tensor { XCTAssertEqual(error.tensor, tensor, "message: \(error)", file: file, line: line) }
        }
    }
}

/// An 8-byte little-endian length followed by the header text.
func lengthPrefix(_ header: String) -> [UInt8] {
    let bytes = Array(header.utf8)
    return withUnsafeBytes(of: UInt64(bytes.count).littleEndian, Array.init) + bytes
}

extension XCTestCase {
    /// A fresh empty folder under the system temporary directory, removed when the test ends.
    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("adapters-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}
