#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Nanoseconds from an arbitrary fixed point (CLOCK_MONOTONIC): for measuring, never for the date.
public enum MonotonicClock {
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// `seconds` as nanoseconds, clamped to 0 … 10^17 (about three years), so that no user-given
    /// duration, timeout or tiny rate can overflow the conversion.
    public static func nanoseconds(_ seconds: Double) -> UInt64 {
        guard seconds > 0 else { return 0 }  // also NaN
        return seconds >= 1e8 ? 100_000_000_000_000_000 : UInt64(seconds * 1e9)
    }

    /// Sleeps until `deadline` (a `now()` value); returns at once if it has passed.
    public static func sleep(until deadline: UInt64) {
        while true {
            let current = now()
            guard current < deadline else { return }
            let remaining = deadline - current
            var ts = timespec(tv_sec: Int(remaining / 1_000_000_000), tv_nsec: Int(remaining % 1_000_000_000))
            _ = nanosleep(&ts, nil)
        }
    }
}
