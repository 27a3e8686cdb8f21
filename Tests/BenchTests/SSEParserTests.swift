import XCTest
@testable import Bench

final class SSEParserTests: XCTestCase {
    /// A stream with every line ending, a comment, a multi-line event, a named event, an id and retry,
    /// an empty data field, a field without a colon, and an event left open at the end (dropped).
    let stream = Array((
        ": keep-alive comment\r\n"
        + "data: {\"a\":1}\n\n"
        + "data:no-space\r\r"
        + "event: usage\r\ndata: line one\r\ndata:  two spaces\r\nid: 7\r\nretry: 100\r\n\r\n"
        + "data\n\n"
        + "data: [DONE]\n\n"
        + "data: unterminated"
    ).utf8)

    let expected = [
        SSEEvent(data: "{\"a\":1}"),
        SSEEvent(data: "no-space"),
        SSEEvent(event: "usage", data: "line one\n two spaces"),
        SSEEvent(data: ""),
        SSEEvent(data: "[DONE]"),
    ]

    func testWholeStream() throws {
        var parser = SSEParser()
        XCTAssertEqual(try parser.feed(stream), expected)
    }

    func testSplitAtEveryByteBoundary() throws {
        for cut in 0...stream.count {
            var parser = SSEParser()
            let events = try parser.feed(stream[..<cut]) + parser.feed(stream[cut...])
            XCTAssertEqual(events, expected, "split at byte \(cut)")
        }
    }

    func testByteByByte() throws {
        var parser = SSEParser()
        var events: [SSEEvent] = []
        for byte in stream { events += try parser.feed([byte]) }
        XCTAssertEqual(events, expected)
    }

    func testCRThenLFInNextPieceIsOneLineEnd() throws {
        var parser = SSEParser()
        XCTAssertEqual(try parser.feed(Array("data: x\r".utf8)), [])
        // The LF completes the CR line end; the next CR LF is the blank line.
        XCTAssertEqual(try parser.feed(Array("\n\r\n".utf8)), [SSEEvent(data: "x")])
    }
}
