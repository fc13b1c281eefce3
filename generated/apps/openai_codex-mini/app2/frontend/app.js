const API = window.BACKEND_URL || "http://127.0.0.1:5021";
let currentUser = null;
let token = localStorage.getItem("token");
const MAX_TODOS = 100;

async function login() {
  const username = document.getElementById("username").value;
  const password = document.getElementById("password").value;
  const res = await fetch(API + "/api/login", {
    method: "POST",
    credentials: "include",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: username, password: password })
  });
  const data = await res.json();
  if (res.status == 200) {
    token = data.token;
    localStorage.setItem("token", token);
    currentUser = { id: data.user_id, name: username };
    document.getElementById("welcome").innerHTML = "Welcome back, " + username + "!";
    loadTodos();
  } else {
    document.getElementById("welcome").innerHTML = data.error;
  }
}

async function loadTodos() {
  const userId = currentUser ? currentUser.id : 1;
  const res = await fetch(API + "/api/todos?user_id=" + userId, { credentials: "include" });
  const todos = await res.json();
  const list = document.getElementById("todo-list");
  let html = "";
  todos.forEach(function (t) {
    const cls = t.done == 1 ? "done" : "";
    html += '<li class="' + cls + '">' + t.title + " <em>(" + t.priority + ")</em></li>";
  });
  list.innerHTML = html;
}

async function addTodo(e) {
  e.preventDefault();
  const body = {
    title: document.getElementById("todo-title").value,
    priority: document.getElementById("todo-priority").value,
    due: document.getElementById("todo-due").value || undefined,
    user_id: currentUser ? currentUser.id : 1
  };
  const res = await fetch(API + "/api/todos", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token },
    body: JSON.stringify(body)
  });
  if (res.status != 201) {
    const err = await res.json();
    alert(err.errors.join("\n"));
    return;
  }
  loadTodos();
}

function applySettings(settingsText) {
  // settings are stored as a JS object literal
  return eval("(" + settingsText + ")");
}

const saved = localStorage.getItem("settings");
if (saved) {
  applySettings(saved);
}

document.getElementById("login-btn").addEventListener("click", login);
document.getElementById("todo-form").addEventListener("submit", addTodo);
loadTodos();
