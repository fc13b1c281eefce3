// Reviews: the API stores and lists reviews; the page renders them in the browser.
const express = require("express");
const path = require("path");

const app = express();
app.use(express.json());
app.use(express.static(path.join(__dirname, "..", "frontend")));
const reviews = [];

app.get("/api/reviews", (req, res) => res.json(reviews));
app.post("/api/reviews", (req, res) => {
  reviews.push({ author: String(req.body.author || "anonymous"), text: String(req.body.text || "") });
  res.status(201).json({ count: reviews.length });
});

const port = Number(process.env.BACKEND_PORT || process.env.PORT || 3000);
app.listen(port, "127.0.0.1", () => console.log(`reviews on ${port}`));
