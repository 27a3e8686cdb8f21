import XCTest
@testable import Llama
final class LlamaSmokeTests: XCTestCase { func testNothing() {} }
