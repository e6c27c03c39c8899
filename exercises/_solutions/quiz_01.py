"""Answers to exercises/quiz_01.md (spoilers). tests/test_exercises.py checks each against refquant."""

ANSWERS = {
    # 1. -3.5 is a tie between -4 and -3: even -> -4; away from zero -> -4; up (toward +inf) -> -3.
    1: {"half_to_even": -4, "half_away_from_zero": -4, "half_up": -3},
    # 2. 0.49999997 + 0.5 = 1 - 2**-25 needs 25 bits; float32 rounds it to 1.0, so floor gives 1.
    #    Round half up of 0.49999997 is 0: the fraction is below one half.
    2: {"floor_x_plus_half_float32": 1.0, "round_half_up": 0.0},
    # 3. narrow drops -128; PyTorch halves both ends (floor division); ONNX Runtime's tool uses a table.
    3: {"narrow": (-127, 127), "pytorch_reduce_range": (-64, 63), "onnxruntime_reduce_range": (-64, 64)},
    # 4. x / S = [2.5, -6, 400] -> RNE [2, -6, 400] -> + 10 = [12, 4, 410] -> saturate [12, 4, 255].
    4: [12, 4, 255],
    # 5. RHAZ(2.5) = 3 -> 13.
    5: [13, 4, 255],
    # 6. x * (1/S) + Z = [12.5, 4, 410] -> RNE [12, 4, 410] -> [12, 4, 255]: here 12.5 goes to the even 12,
    #    the same as ONNX; with Z = 11 the two would differ (ONNX 2 + 11 = 13, PyTorch RNE(13.5) = 14).
    6: [12, 4, 255],
    # 7. S = (6 - (-2)) / 255 = 0.03137255; Z = 0 - round(-2 / S) = -round(-63.75) = 64.
    7: {"scale": 0.03137255, "zero_point": 64},
    # 8. S = max(2, 6) / 127.5 = 0.04705882; Z = 0.
    8: {"scale": 0.04705882, "zero_point": 0},
    # 9. Z is the code that represents the real value 0 (r = S (q - Z) = 0 for q = Z), and codes are
    #    integers. Zero padding, ReLU and pruned weights must be exactly zero after quantization.
    9: "Z is the integer code of the real value 0, so that 0 is represented exactly.",
}
