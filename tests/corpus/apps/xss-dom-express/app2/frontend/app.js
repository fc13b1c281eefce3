// Show the reviews the API returns.
const list = document.getElementById("reviews");

async function showReviews() {
  const response = await fetch("/api/reviews");
  const reviews = await response.json();
  list.replaceChildren(...reviews.map((review) => {
    const item = document.createElement("li");
    const author = document.createElement("b");
    author.textContent = review.author;
    item.append(author, `: ${review.text}`);
    return item;
  }));
}

showReviews();
