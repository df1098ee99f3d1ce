// Adding a card or bank account through Stripe's Payment Element (payments/_stripe_form.html):
// the form's data attributes say where to ask for a SetupIntent and where Stripe returns.
(() => {
  const form = document.getElementById("stripe-method-form");
  const button = form.querySelector("button");
  const json = (id) => JSON.parse(document.getElementById(id).textContent);
  const fail = (message) => {
    const box = document.getElementById("payment-element-error");
    box.textContent = message;
    box.hidden = !message;
    button.disabled = false;
  };
  const stripe = Stripe(json("stripe-publishable-key"));
  const elements = stripe.elements({
    mode: "setup",
    currency: form.dataset.currency,
    paymentMethodTypes: json("stripe-method-types"),
  });
  elements.create("payment").mount("#payment-element");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fail("");
    button.disabled = true;  // one SetupIntent per click
    const { error: incomplete } = await elements.submit();
    if (incomplete) return fail(incomplete.message);
    const answer = await fetch(form.dataset.setupUrl, {
      method: "POST",
      headers: { "X-CSRFToken": form.elements.csrfmiddlewaretoken.value },
      credentials: "same-origin",
    });
    if (!answer.ok) return fail("Stripe could not be reached: please try again.");
    const { client_secret: clientSecret } = await answer.json();
    const { error, setupIntent } = await stripe.confirmSetup({
      elements,
      clientSecret,
      confirmParams: { return_url: form.dataset.returnUrl },
      redirect: "if_required",
    });
    if (error) return fail(error.message);
    form.elements.payment_method_id.value = setupIntent.payment_method;
    form.submit();
  });
})();
