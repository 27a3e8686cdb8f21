import Foundation

/// A hand-written SVG of a run: output tokens/s over time, requests/s over time (failures in red), and
/// the latency distributions as percentile curves (x: percentile on the 1/(1-p) scale HDR plots use,
/// y: milliseconds, logarithmic).
public enum SVGPlot {
    static let width = 960.0
    static let panelHeight = 240.0
    static let left = 80.0, right = 30.0, top = 75.0, gap = 70.0

    public static func render(_ result: BenchResult) -> String {
        let height = top + 3 * panelHeight + 2 * gap + 95
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>

        """
        let title = (result.options.name.map { "\($0): " } ?? "") + "\(result.succeeded)/\(result.sent) ok, "
            + String(format: "%.2f req/s, %.1f tok/s over %.1f s", result.requestsPerSecond, result.outputTokensPerSecond, result.durationSeconds)
        svg += text(left, 24, escape(title), size: 15, weight: "bold")

        let seconds = result.timeline.map { Double($0.second) + 0.5 }
        var y0 = top
        svg += timeSeries(frame: Frame(x: left, y: y0, w: width - left - right, h: panelHeight),
                          title: "output tokens/s", xs: seconds,
                          series: [("tokens/s", "#1f77b4", result.timeline.map(\.outputTokens))], bars: nil)
        y0 += panelHeight + gap
        svg += timeSeries(frame: Frame(x: left, y: y0, w: width - left - right, h: panelHeight),
                          title: "requests/s (completed; failed in red)", xs: seconds,
                          series: [("succeeded/s", "#2ca02c", result.timeline.map { Double($0.succeeded) })],
                          bars: ("failed/s", "#d62728", result.timeline.map { Double($0.failed) }))
        y0 += panelHeight + gap
        svg += percentilePanel(frame: Frame(x: left, y: y0, w: width - left - right, h: panelHeight), result: result)
        svg += "</svg>\n"
        return svg
    }

    struct Frame {
        var x, y, w, h: Double
    }

    // MARK: - Panels

    static func timeSeries(frame: Frame, title: String, xs: [Double], series: [(String, String, [Double])],
                           bars: (String, String, [Double])?) -> String {
        var out = text(frame.x, frame.y - 10, title, size: 13, weight: "bold")
        let xMax = max(1, (xs.last ?? 0) + 0.5)
        let yMaxRaw = (series.flatMap { $0.2 } + (bars?.2 ?? [])).max() ?? 0
        let yTicks = niceTicks(max: max(yMaxRaw, 1))
        let yMax = yTicks.last ?? 1
        let xTicks = niceTicks(max: xMax)
        func px(_ x: Double) -> Double { frame.x + x / max(xTicks.last ?? xMax, xMax) * frame.w }
        func py(_ y: Double) -> Double { frame.y + frame.h - y / yMax * frame.h }
        out += axes(frame)
        for t in yTicks {
            out += line(frame.x, py(t), frame.x + frame.w, py(t), color: "#e5e5e5")
            out += text(frame.x - 6, py(t) + 4, format(t), anchor: "end")
        }
        for t in xTicks {
            out += text(px(t), frame.y + frame.h + 16, format(t), anchor: "middle")
        }
        out += text(frame.x + frame.w / 2, frame.y + frame.h + 34, "seconds since start", anchor: "middle")
        if let (name, color, values) = bars {
            let barWidth = max(1, frame.w / max(xTicks.last ?? xMax, xMax) * 0.6)
            for (x, v) in zip(xs, values) where v > 0 {
                out += "<rect x=\"\(r(px(x) - barWidth / 2))\" y=\"\(r(py(v)))\" width=\"\(r(barWidth))\" height=\"\(r(frame.y + frame.h - py(v)))\" fill=\"\(color)\" opacity=\"0.8\"/>\n"
            }
            _ = name
        }
        for (_, color, values) in series where !values.isEmpty {
            let points = zip(xs, values).map { "\(r(px($0))),\(r(py($1)))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points)\"/>\n"
        }
        return out
    }

    static func percentilePanel(frame: Frame, result: BenchResult) -> String {
        var out = text(frame.x, frame.y - 10, "latency distribution (ms, log scale) by percentile", size: 13, weight: "bold")
        let curves: [(String, String, LatencyHistogram)] = [
            ("time to first token", "#1f77b4", result.timeToFirstToken),
            ("inter-token", "#ff7f0e", result.interTokenLatency),
            ("per output token", "#9467bd", result.timePerOutputToken),
            ("end to end", "#2ca02c", result.latency),
        ].filter { $0.2.count > 0 }
        out += axes(frame)
        guard !curves.isEmpty else {
            return out + text(frame.x + frame.w / 2, frame.y + frame.h / 2, "no successful requests", anchor: "middle")
        }
        // x = log10(1 / (1 - p)): 0 at p=0, 1 at 90%, 2 at 99%, 3 at 99.9% …
        let maxCount = curves.map { $0.2.count }.max() ?? 1
        let xMax = max(1, min(5, ceil(log10(Double(maxCount)))))
        let lows = curves.map { max(0.001, Double($0.2.minMicroseconds) / 1000) }
        let highs = curves.map { Double($0.2.maxMicroseconds) / 1000 }
        let logMin = floor(log10(lows.min() ?? 0.001))
        let logMax = max(logMin + 1, ceil(log10(max(highs.max() ?? 1, 0.001))))
        func px(_ x: Double) -> Double { frame.x + x / xMax * frame.w }
        func py(_ ms: Double) -> Double {
            let l = log10(max(ms, pow(10, logMin)))
            return frame.y + frame.h - (l - logMin) / (logMax - logMin) * frame.h
        }
        var decade = logMin
        while decade <= logMax {
            let v = pow(10, decade)
            out += line(frame.x, py(v), frame.x + frame.w, py(v), color: "#e5e5e5")
            out += text(frame.x - 6, py(v) + 4, format(v), anchor: "end")
            decade += 1
        }
        let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        for i in 0...Int(xMax) {
            out += line(px(Double(i)), frame.y, px(Double(i)), frame.y + frame.h, color: "#e5e5e5")
            out += text(px(Double(i)), frame.y + frame.h + 16, labels[min(i, labels.count - 1)], anchor: "middle")
        }
        out += text(frame.x + frame.w / 2, frame.y + frame.h + 34, "percentile", anchor: "middle")
        for (i, (name, color, h)) in curves.enumerated() {
            // Each curve stops where its own data ends (1/(1-p) = its count).
            let xEnd = max(0.5, min(xMax, log10(Double(h.count))))
            let steps = 200
            var points: [String] = []
            for s in 0...steps {
                let x = xEnd * Double(s) / Double(steps)
                let p = (1 - pow(10, -x)) * 100
                points.append("\(r(px(x))),\(r(py(h.milliseconds(atPercentile: min(p, 100)))))")
            }
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
            // Legend under the axis, two columns.
            let lx = frame.x + Double(i % 2) * frame.w / 2
            let ly = frame.y + frame.h + 58 + Double(i / 2) * 18
            out += line(lx, ly - 4, lx + 20, ly - 4, color: color, width: 3)
            out += text(lx + 26, ly, escape("\(name) (p50 \(format(h.milliseconds(atPercentile: 50))) ms, p99 \(format(h.milliseconds(atPercentile: 99))) ms)"))
        }
        return out
    }

    // MARK: - Primitives

    static func axes(_ f: Frame) -> String {
        line(f.x, f.y, f.x, f.y + f.h, color: "#333") + line(f.x, f.y + f.h, f.x + f.w, f.y + f.h, color: "#333")
    }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, color: String, width: Double = 1) -> String {
        "<line x1=\"\(r(x1))\" y1=\"\(r(y1))\" x2=\"\(r(x2))\" y2=\"\(r(y2))\" stroke=\"\(color)\" stroke-width=\"\(width)\"/>\n"
    }

    static func text(_ x: Double, _ y: Double, _ s: String, anchor: String = "start", size: Int = 12, weight: String = "normal") -> String {
        "<text x=\"\(r(x))\" y=\"\(r(y))\" text-anchor=\"\(anchor)\" font-size=\"\(size)\" font-weight=\"\(weight)\">\(s)</text>\n"
    }

    static func r(_ x: Double) -> String { String(format: "%.1f", x) }

    static func format(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 100 || v == v.rounded() { return String(format: "%.0f", v) }
        if abs(v) >= 1 { return String(format: "%.1f", v) }
        return String(format: "%.3g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// 0 and round steps (1, 2 or 5 × 10^k) up to at least `max`, about five of them.
    static func niceTicks(max: Double) -> [Double] {
        guard max > 0, max.isFinite else { return [0, 1] }
        let raw = max / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var ticks: [Double] = []
        var t = 0.0
        while t < max + step * 0.5 && ticks.count < 50 {
            ticks.append(t)
            if t >= max { break }
            t += step
        }
        return ticks
    }
}
