"""Conv2d forward and backward on a 3x3 image and a 2x2 kernel, by hand (Learn 7, eqs. (7)-(12))."""
import numpy as np

from refquant import nn
from refquant.nn.conv import im2col

conv = nn.Conv2d(1, 1, 2, bias=False, dtype=np.float64)
conv.weight.value[0, 0] = [[1.0, -1.0],
                           [2.0, 0.0]]                       # W (1, 1, 2, 2)
x = np.array([[1.0, 2.0, 0.0],
              [0.0, 1.0, 3.0],
              [2.0, 0.0, 1.0]]).reshape(1, 1, 3, 3)            # X (N=1, C=1, 3, 3)

y = conv(x)                                                  # eq. (7): y[h,w] = sum_ij W[i,j] x[h+i, w+j]
# y[0,0] = 1*1 - 1*2 + 2*0 + 0*1 = -1      y[0,1] = 1*2 - 1*0 + 2*1 + 0*3 = 4
# y[1,0] = 1*0 - 1*1 + 2*2 + 0*0 =  3      y[1,1] = 1*1 - 1*3 + 2*0 + 0*1 = -2
assert y[0, 0].tolist() == [[-1.0, 4.0], [3.0, -2.0]]

# eq. (8): the same numbers as one matrix product, W as a row times the im2col matrix
cols = im2col(x, (2, 2), (1, 1), (1, 1), groups=1)[0]       # (C*kH*kW, N*Ho*Wo) = (4, 4): one column per window
print("im2col columns (one per output position):\n", cols)
assert (conv.weight.value.reshape(1, 4) @ cols).reshape(2, 2).tolist() == y[0, 0].tolist()

g = np.array([[1.0, 0.0],
              [0.0, 1.0]]).reshape(1, 1, 2, 2)                # G = dL/dY
conv.zero_grad()
gx = conv.backward(g)
# eq. (10): dW[i,j] = sum_hw G[h,w] x[h+i, w+j] = x[i,j] + x[i+1,j+1]  (G is 1 at (0,0) and (1,1))
assert conv.weight.grad[0, 0].tolist() == [[1 + 1, 2 + 3], [0 + 0, 1 + 1]]
# eq. (12): each G[h,w] puts a copy of W at offset (h, w): the "full" convolution with W
expected_gx = [[1.0, -1.0, 0.0],      # W at (0, 0) ...
               [2.0, 0.0 + 1.0, -1.0],  # ... plus W at (1, 1)
               [0.0, 2.0, 0.0]]
assert gx[0, 0].tolist() == expected_gx

print("Y     =", y[0, 0].tolist())
print("dL/dW =", conv.weight.grad[0, 0].tolist())
print("dL/dX =", gx[0, 0].tolist())
