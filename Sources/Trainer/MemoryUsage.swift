import Foundation

/// The process's memory as the kernel reports it (Linux `/proc/self/status`).
public enum MemoryUsage {
    /// Peak resident set size in bytes (`VmHWM`), or nil where unavailable.
    public static var peakResidentBytes: Int? { field("VmHWM:") }

    /// Current resident set size in bytes (`VmRSS`).
    public static var residentBytes: Int? { field("VmRSS:") }

    private static func field(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let digits = line.dropFirst(name.count).trimmingCharacters(in: .whitespaces).split(separator: " ").first
            if let d = digits, let kb = Int(d) { return kb * 1024 }
        }
        return nil
    }
}
