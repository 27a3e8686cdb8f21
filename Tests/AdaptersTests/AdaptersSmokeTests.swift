import XCTest
@testable import Adapters
final class AdaptersSmokeTests: XCTestCase { func testNothing() {} }
