// Product catalogue on SQLite (sql.js): list the products of a category.
const express = require("express");
const initSqlJs = require("sql.js");

const app = express();
app.use(express.urlencoded({ extended: false }));

initSqlJs().then((SQL) => {
  const db = new SQL.Database();
  db.run("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, category TEXT, price REAL)");
  db.run("INSERT INTO products (name, category, price) VALUES ('lamp', 'home', 20), ('desk', 'office', 90), ('chair', 'office', 45)");

  app.post("/catalogue/filter", (req, res) => {
    const category = req.body.category || "home";
    try {
      const result = db.exec(`SELECT id, name, price FROM products WHERE category = '${category}'`);
      res.json(result.length ? result[0].values : []);
    } catch (error) {
      res.status(500).json({ error: error.message });
    }
  });

  app.get("/catalogue", (req, res) => res.json(db.exec("SELECT id, name FROM products")[0].values));

  const port = Number(process.env.BACKEND_PORT || process.env.PORT || 3000);
  app.listen(port, "127.0.0.1", () => console.log(`catalogue on ${port}`));
});
