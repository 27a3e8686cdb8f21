import XCTest
@testable import Bench

final class HTTPResponseParserTests: XCTestCase {
    /// Feeds `bytes` split at `cut`; returns the head, the body and whether the end was seen.
    private func parse(_ bytes: [UInt8], cut: Int? = nil, eof: Bool = false) throws -> (HTTPResponseHead?, [UInt8], Bool) {
        var parser = HTTPResponseParser()
        var events: [HTTPResponseParser.Event] = []
        if let cut {
            events += try parser.feed(bytes[..<cut])
            events += try parser.feed(bytes[cut...])
        } else {
            events += try parser.feed(bytes[...])
        }
        if eof { events += try parser.finish() }
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        var ended = false
        for e in events {
            switch e {
            case .head(let h): head = h
            case .body(let b): body += b
            case .end: ended = true
            }
        }
        return (head, body, ended)
    }

    func testChunkedSplitAnywhere() throws {
        let text = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "7\r\ndata: a\r\n" + "A;ext=1\r\n\n\ndata: bc\r\n" + "0\r\nX-Trailer: t\r\n\r\n"
        let bytes = Array(text.utf8)
        for cut in 0...bytes.count {
            let (head, body, ended) = try parse(bytes, cut: cut)
            XCTAssertEqual(head?.status, 200, "cut \(cut)")
            XCTAssertEqual(head?.header("content-type"), "text/event-stream")
            XCTAssertEqual(String(decoding: body, as: UTF8.self), "data: a\n\ndata: bc", "cut \(cut)")
            XCTAssertTrue(ended, "cut \(cut)")
        }
    }

    func testContentLengthAndInterimResponse() throws {
        let bytes = Array("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".utf8)
        for cut in 0...bytes.count {
            let (head, body, ended) = try parse(bytes, cut: cut)
            XCTAssertEqual(head?.status, 500)
            XCTAssertEqual(head?.reason, "Internal Server Error")
            XCTAssertEqual(head?.keepAlive, false)
            XCTAssertEqual(body, Array("hello".utf8))
            XCTAssertTrue(ended)
        }
    }

    func testBodyUntilCloseAndHTTP10() throws {
        let (head, body, ended) = try parse(Array("HTTP/1.0 200 OK\r\n\r\nabc".utf8), eof: true)
        XCTAssertEqual(head?.minorVersion, 0)
        XCTAssertEqual(head?.keepAlive, false)
        XCTAssertEqual(body, Array("abc".utf8))
        XCTAssertTrue(ended)
    }

    func testTruncatedAndMalformedResponsesThrow() {
        XCTAssertThrowsError(try parse(Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".utf8), eof: true)) {
            XCTAssertEqual(($0 as? HTTPClientError).map(RequestErrorKind.init), .connection)
        }
        XCTAssertThrowsError(try parse([], eof: true)) {
            XCTAssertEqual(($0 as? HTTPClientError).map(RequestErrorKind.init), .connection)
        }
        for bad in ["HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\nextra"] {
            XCTAssertThrowsError(try parse(Array(bad.utf8)), bad) {
                XCTAssertEqual(($0 as? HTTPClientError).map(RequestErrorKind.init), .protocolError, bad)
            }
        }
    }
}
