import XCTest
@testable import HTTP

/// Wire forms written out by hand from RFC 9112 (chunked coding) and the WHATWG event-stream format.
final class ResponseEncodingTests: XCTestCase {
    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    func testChunkSizesAreLowercaseHex() {
        XCTAssertEqual(text(ResponseEncoding.chunk(Array("abc".utf8))), "3\r\nabc\r\n")
        XCTAssertEqual(text(ResponseEncoding.chunk([UInt8](repeating: 120, count: 255))),
                       "ff\r\n" + String(repeating: "x", count: 255) + "\r\n")
        XCTAssertEqual(Array(text(ResponseEncoding.chunk([UInt8](repeating: 0, count: 4096))).utf8.prefix(6)),
                       Array("1000\r\n".utf8))
        XCTAssertEqual(ResponseEncoding.chunk([]), [], "an empty chunk would terminate the body")
        XCTAssertEqual(text(ResponseEncoding.lastChunk), "0\r\n\r\n")
    }

    func testNoBodyStatusesGetNoFraming() {
        XCTAssertEqual(text(ResponseEncoding.head(status: 204, headers: [], framing: .none, close: false)),
                       "HTTP/1.1 204 No Content\r\n\r\n")
        XCTAssertEqual(text(ResponseEncoding.head(status: 299, headers: [], framing: .length(0), close: true)),
                       "HTTP/1.1 299 Status 299\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(ResponseEncoding.statusHasNoBody(304))
        XCTAssertFalse(ResponseEncoding.statusHasNoBody(200))
    }

    func testErrorBodyEscapesTheMessage() {
        XCTAssertEqual(
            text(ResponseEncoding.errorBody(status: 400, message: "bad \"x\"\n\\ \u{1}é")),
            #"{"error":{"message":"bad \"x\"\n\\ \u0001é","type":"invalid_request_error","code":400}}"#)
        XCTAssertEqual(
            text(ResponseEncoding.errorBody(status: 503, message: "busy")),
            #"{"error":{"message":"busy","type":"server_error","code":503}}"#)
    }

    func testServerSentEventLinesAndFields() {
        XCTAssertEqual(text(ServerSentEvent(data: "hello").encoded), "data: hello\n\n")
        XCTAssertEqual(text(ServerSentEvent(data: "").encoded), "data: \n\n")
        XCTAssertEqual(text(ServerSentEvent(data: "a\nb\r\nc\rd\n").encoded),
                       "data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n")
        XCTAssertEqual(text(ServerSentEvent(data: "x", event: "up\r\ndate", id: "4\r2").encoded),
                       "event: update\nid: 42\ndata: x\n\n")
    }
}
