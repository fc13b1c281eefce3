"""Calculator API: evaluates the arithmetic a user types."""

import ast
import operator
import os

from flask import Flask, jsonify, request

app = Flask(__name__)

OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def arithmetic(node):
    if isinstance(node, ast.Expression):
        return arithmetic(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
        return OPERATORS[type(node.op)](arithmetic(node.left), arithmetic(node.right))
    raise ValueError("only arithmetic is allowed")


@app.get("/calc")
def calculate():
    expression = request.args.get("expression", "1+1")
    try:
        value = eval(expression)
    except Exception as error:  # noqa: BLE001
        return jsonify(error=type(error).__name__), 400
    return jsonify(expression=expression, value=str(value))


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 5000)))
