package io.squeezerface.core

import org.junit.Test

/** Runs last (the driver names it last): prints the largest error per metric seen by the golden checks. */
class ZzGoldenReport {
    @Test
    fun report() {
        println()
        println("GOLDEN | opencv ${Golden.root.obj("generator").str("opencv")} | warpAffine kernel ${Golden.warpKernel}")
        for ((metric, s) in Check.stats) {
            val extra = if (s.differing > 0) ", ${s.differing} values off" else ""
            println("GOLDEN | $metric | checks ${s.checks} | values ${s.values} | max error ${"%.3g".format(s.max)} | tolerance ${s.tolerance}$extra")
        }
    }
}
