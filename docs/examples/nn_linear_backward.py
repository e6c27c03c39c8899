"""The backward pass of a Linear layer, by hand (Learn 7, eqs. (2)-(5))."""
import numpy as np

from refquant import nn

layer = nn.Linear(3, 2, dtype=np.float64)
layer.weight.value[...] = [[1.0, 2.0, 0.0],
                           [-1.0, 0.5, 3.0]]    # W (out=2, in=3)
layer.bias.value[...] = [0.5, -1.0]              # b (2,)
x = np.array([[1.0, 0.0, 2.0],
              [0.0, 1.0, -1.0]])                 # X (N=2, in=3)

y = layer(x)                                     # eq. (2): Y = X W^T + b        -> (2, 2)
# row 0: [1*1 + 0*2 + 2*0 + 0.5,  1*(-1) + 0*0.5 + 2*3 - 1] = [1.5, 4.0]
# row 1: [0*1 + 1*2 - 1*0 + 0.5,  0*(-1) + 1*0.5 - 1*3 - 1] = [2.5, -3.5]
assert y.tolist() == [[1.5, 4.0], [2.5, -3.5]]

g = np.array([[1.0, 0.0],
              [0.0, 2.0]])                       # G = dL/dY, e.g. for L = sum(G * Y)
layer.zero_grad()
gx = layer.backward(g)                           # returns dL/dX, adds into .grad

# eq. (3): dL/dW = G^T X = [[1*X0 + 0*X1], [0*X0 + 2*X1]]
assert layer.weight.grad.tolist() == [[1.0, 0.0, 2.0], [0.0, 2.0, -2.0]]
# eq. (4): dL/db = sum of G over the batch
assert layer.bias.grad.tolist() == [1.0, 2.0]
# eq. (5): dL/dX = G W = [[1*W0 + 0*W1], [0*W0 + 2*W1]]
assert gx.tolist() == [[1.0, 2.0, 0.0], [-2.0, 1.0, 6.0]]

print("Y      =", y.tolist())
print("dL/dW  =", layer.weight.grad.tolist())
print("dL/db  =", layer.bias.grad.tolist())
print("dL/dX  =", gx.tolist())
