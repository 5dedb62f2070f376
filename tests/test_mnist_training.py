"""A short real training run of the notes' network on MNIST."""
import dlcore
from dlcore.data import load_mnist
from dlcore.optim import Adam
from dlcore.zoo import mnist_cnn


def test_notes_network_reaches_95_percent_on_the_test_set(mnist_path):
    dlcore.manual_seed(0)
    x_train, y_train = load_mnist("train", data_dir=mnist_path)
    x_test, y_test = load_mnist("test", data_dir=mnist_path)
    model = mnist_cnn()
    model.fit(x_train, y_train, optimizer=Adam(model.parameters(), lr=1e-3), batch_size=50,
              iterations=300, rng=0, progress=False, verbose=False)
    assert model.evaluate(x_test, y_test)["accuracy"] >= 0.95
