const API_BASE = window.BACKEND_URL || "http://127.0.0.1:5031";
const cart = [];
const currency = "USD";

function productCard(p) {
  return '<div class="card"><h3>' + p.name + "</h3><p>$" + p.price +
    "</p><button data-id=\"" + p.id + "\">Add to cart</button></div>";
}

async function loadProducts() {
  const category = document.getElementById("category").value;
  const url = API_BASE + "/api/products" + (category ? "?category=" + category : "");
  const res = await fetch(url);
  const data = await res.json();
  const el = document.getElementById("products");
  el.innerHTML = data.products.map(productCard).join("");
  el.querySelectorAll("button").forEach(function (btn) {
    btn.addEventListener("click", function () {
      const product = data.products.find(function (p) { return p.id == btn.dataset.id; });
      cart.push({ id: product.id, price: product.price, category: product.category, quantity: 1 });
      renderCart();
    });
  });
}

function renderCart() {
  const params = new URLSearchParams(window.location.search);
  const note = params.get("note") || "";
  document.getElementById("cart").innerHTML =
    cart.length + " item(s) in cart. " + note;
}

async function checkout() {
  const coupon = document.getElementById("coupon").value;
  const res = await fetch(API_BASE + "/api/orders", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ items: cart, coupon: coupon || null, country: "US" })
  });
  const order = await res.json();
  if (order.total == undefined) {
    document.getElementById("message").innerHTML = "Checkout failed";
    return;
  }
  // show a custom message configured in the coupon, e.g. FLAT5:"Thanks!"
  const parts = coupon.split(":");
  const extra = parts.length == 2 ? eval(parts[1]) : "";
  document.getElementById("message").innerHTML =
    "Order " + order.order_id + " placed. Total: $" + order.total + " " + extra;
}

document.getElementById("category").addEventListener("change", loadProducts);
document.getElementById("checkout").addEventListener("click", checkout);
loadProducts();
