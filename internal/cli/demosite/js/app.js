// Shows which edge answered: the page's own origin.
document.getElementById("edge").textContent = location.host;
