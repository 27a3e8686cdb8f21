import Foundation

/// A small self-contained SVG chart of the training loss per step and the eval loss per evaluation.
public enum LossCurveSVG {
    public static func render(steps: [StepRecord], evals: [EvalRecord], title: String = "LoRA training loss") -> String {
        let width = 720.0, height = 360.0
        let left = 60.0, right = 20.0, top = 36.0, bottom = 44.0
        let plotW = width - left - right, plotH = height - top - bottom
        let xs = steps.map { Double($0.step) } + evals.map { Double($0.step) }
        let ys = (steps.map(\.loss) + evals.map(\.loss)).filter(\.isFinite)
        let maxX = max(1, xs.max() ?? 1)
        var minY = ys.min() ?? 0, maxY = ys.max() ?? 1
        if maxY - minY < 1e-9 { minY -= 0.5; maxY += 0.5 }
        let pad = (maxY - minY) * 0.05
        minY = max(0, minY - pad); maxY += pad
        func px(_ x: Double) -> Double { left + x / maxX * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - minY) / (maxY - minY)) * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(width / 2))" y="20" text-anchor="middle" font-size="14">\(escape(title))</text>

        """
        for i in 0...4 {
            let y = minY + (maxY - minY) * Double(i) / 4
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(py(y)))\" x2=\"\(f(width - right))\" y2=\"\(f(py(y)))\" stroke=\"#ddd\"/>\n"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(py(y) + 4))\" text-anchor=\"end\">\(String(format: "%.3g", y))</text>\n"
        }
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top + plotH))\" x2=\"\(f(width - right))\" y2=\"\(f(top + plotH))\" stroke=\"black\"/>\n"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + plotH))\" stroke=\"black\"/>\n"
        svg += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 10))\" text-anchor=\"middle\">step (of \(Int(maxX)))</text>\n"
        let trainPoints = steps.filter { $0.loss.isFinite }.map { "\(f(px(Double($0.step)))),\(f(py($0.loss)))" }
        if !trainPoints.isEmpty {
            svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"\(trainPoints.joined(separator: " "))\"/>\n"
        }
        let evalPoints = evals.filter { $0.loss.isFinite }
        if !evalPoints.isEmpty {
            svg += "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\" points=\""
                + evalPoints.map { "\(f(px(Double($0.step)))),\(f(py($0.loss)))" }.joined(separator: " ") + "\"/>\n"
            for e in evalPoints {
                svg += "<circle cx=\"\(f(px(Double(e.step))))\" cy=\"\(f(py(e.loss)))\" r=\"3\" fill=\"#d62728\"/>\n"
            }
        }
        svg += "<text x=\"\(f(width - right - 150))\" y=\"\(f(top + 14))\" fill=\"#1f77b4\">— train loss</text>\n"
        if !evalPoints.isEmpty {
            svg += "<text x=\"\(f(width - right - 150))\" y=\"\(f(top + 30))\" fill=\"#d62728\">- - eval loss</text>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    private static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
