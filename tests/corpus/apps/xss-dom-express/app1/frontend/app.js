// Show the reviews the API returns.
const list = document.getElementById("reviews");

async function showReviews() {
  const response = await fetch("/api/reviews");
  const reviews = await response.json();
  list.innerHTML = reviews.map((review) => `<li><b>${review.author}</b>: ${review.text}</li>`).join("");
}

showReviews();
