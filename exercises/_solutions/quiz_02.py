"""Answers to exercises/quiz_02.md (spoilers). tests/test_exercises.py checks each against refquant."""

ANSWERS = {
    # 1. a - za = [-1, 1, 3], b - zb = [1, -1, 0]: -1 - 1 + 0 = -2.
    #    P = 3*2 + 5*0 + 7*1 = 13, r = 15, c = 3: 13 - 1*15 - 4*3 + 3*4*1 = -2.
    1: {"acc": -2, "P": 13, "r": 15, "c": 3},
    # 2. |acc| <= K * 128 * 128 = K * 2^14 <= 2^31 - 1  ->  K <= 131071 (at K = 2^17 all -128 give 2^31).
    2: 131071,
    # 3. pairs: 200*100 + 100*100 = 30000 (fits); 255*(-128)*2 = -65280 -> -32768.
    3: {"exact": 30000 - 65280, "avx2": 30000 - 32768},
    # 4. 2 * 255 * m <= 32767  ->  m <= 64.25: m = 64 (ONNX Runtime's 7-bit weights are [-64, 64]).
    4: 64,
    # 5. 0.375 = 0.75 * 2^-1: q = 0.75 * 2^31 = 1610612736, shift -1.
    5: (1610612736, -1),
    # 6. RHU(2.5) = 3, RHU(-2.5) = -2: SRDHM rounds half up.
    6: (3, -2),
    # 7. RHAZ(2.5) = 3, RHAZ(-2.5) = -3: RDBPOT rounds half away from zero.
    7: (3, -3),
    # 8. double: SRDHM(-10, 2^30) = RHU(-5) = -5, RDBPOT(-5, 1) = RHAZ(-2.5) = -3; single: RHU(-2.5) = -2.
    8: {"double": -3, "single": -2},
    # 9. Q(0) = Z = -20; Q(6) = -20 + RHAZ(6 / 0.05) = -20 + 120 = 100.
    9: (-20, 100),
    # 10. x * 0.01 = [10, -25, 200]; + (-20) = [-10, -45, 180]; clamp to [-20, 100].
    10: [-10, -20, 100],
    # 11. With shift >= 0 there is no right shift (r = 0): RDBPOT(x, 0) = x, so only SRDHM rounds.
    11: "With shift >= 0 the right shift is 0 and RDBPOT does nothing: only one rounding happens.",
}
